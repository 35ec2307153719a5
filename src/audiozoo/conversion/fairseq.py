"""Reading fairseq trainer checkpoints without fairseq or omegaconf, and without running pickled code.

A fairseq checkpoint is a `torch.save` dict (cfg, model, optimizer_history, extra_state, ...). Some files store
plain data only and load with `weights_only=True`; released ones may pickle omegaconf/fairseq objects (the
config) or argparse Namespaces. Those are read with a restricted unpickler: torch's own safe globals and a few
plain types are admitted; omegaconf/fairseq/enum classes become inert stand-ins that keep their pickled state
(converted back to plain dicts and values); anything else is refused with the name of the class.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import torch

from .common import CheckpointError, load_torch_checkpoint

# classes rebuilt as inert stand-ins (their pickled state is kept, their code never runs)
STAND_IN_MODULE_PREFIXES = ("omegaconf", "fairseq", "enum", "examples.data2vec", "EAT")
# real classes admitted besides torch's weights-only allowlist
ADMITTED = {
    ("argparse", "Namespace"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
}


class PickledStandIn:
    """Stands in for a class of a package that is not installed; records constructor arguments and state."""

    pickled_class = "?"

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<stand-in for {self.pickled_class}>"


def _stand_in(module: str, name: str) -> type:
    return type(name, (PickledStandIn,), {"pickled_class": f"{module}.{name}", "__module__": __name__})


def _torch_safe_globals() -> dict[str, object]:
    from torch import _weights_only_unpickler

    return _weights_only_unpickler._get_allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        qualified = f"{module}.{name}"
        allowed = _torch_safe_globals()
        if qualified in allowed:
            return allowed[qualified]
        if (module, name) in ADMITTED:
            return super().find_class(module, name)
        if module.startswith(STAND_IN_MODULE_PREFIXES):
            return _stand_in(module, name)
        raise CheckpointError(
            f"the checkpoint pickles {qualified}, which this reader does not admit (only tensors, plain "
            "containers, numpy scalars, argparse.Namespace and stand-ins for omegaconf/fairseq objects)"
        )


_RESTRICTED_PICKLE = SimpleNamespace(
    Unpickler=RestrictedUnpickler, load=pickle.load, loads=pickle.loads, __name__="audiozoo_restricted_pickle"
)


def to_plain(value):
    """Stand-ins, Namespaces and nested containers -> plain dicts, lists and values (omegaconf's layout known)."""
    if isinstance(value, PickledStandIn):
        state = value.state
        if isinstance(state, dict) and "_content" in state:  # omegaconf DictConfig / ListConfig
            return to_plain(state["_content"])
        if isinstance(state, dict) and "_val" in state:  # omegaconf value nodes
            return to_plain(state["_val"])
        if value.args:  # enums and other reduce-by-call objects
            return to_plain(value.args[0]) if len(value.args) == 1 else [to_plain(a) for a in value.args]
        return to_plain(state) if state is not None else None
    if isinstance(value, SimpleNamespace) or type(value).__name__ == "Namespace":
        return {key: to_plain(item) for key, item in vars(value).items()}
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    return value


def load_fairseq_checkpoint(path: str | Path) -> dict:
    """The checkpoint as plain data: cfg as nested dicts, model as a state dict (tensors and nested dicts)."""
    try:
        checkpoint = load_torch_checkpoint(path)
    except CheckpointError as error:
        if "pickles objects other than tensors" not in str(error):
            raise
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED_PICKLE)
        except CheckpointError:
            raise
        except Exception as failure:  # noqa: BLE001  (any unpickling failure is reported with the file name)
            raise CheckpointError(f"could not read {path} as a fairseq checkpoint: {failure}") from failure
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path} is not a fairseq checkpoint: expected a dict with 'cfg' and 'model', found {found}")
    checkpoint["cfg"] = to_plain(checkpoint.get("cfg"))
    if checkpoint["cfg"] is None and checkpoint.get("args") is not None:
        checkpoint["cfg"] = {"model": to_plain(checkpoint["args"])}  # pre-hydra fairseq
    return checkpoint
