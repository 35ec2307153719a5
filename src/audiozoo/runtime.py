"""Where and how inference runs: the device (checked, never a silent CPU fall-back), the compute dtype (autocast)
and torch.compile with a fall-back. One place for the pipelines, the dataset runner, the CLI and the benchmarks.

- `--dtype float32` (the default) runs as the originals did. `bfloat16` / `float16` keep the weights and the front
  end in float32 and run the model under `torch.autocast`: matrix products and convolutions in the low precision,
  reductions and normalisations in float32 as autocast decides. The outputs differ from float32 by the bound
  `LOW_PRECISION_TOLERANCE` states (checked per family in tests/test_device_dtype.py).
- `compile_model` wraps the base model's forward in `torch.compile`; where compiling fails (no C++ compiler, an
  unsupported operation) the first call warns once and the model runs eagerly from then on.

torch is imported inside the functions, so that the command line's `--help` stays fast.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

DTYPE_NAMES = ("float32", "bfloat16", "float16")

# max |low-precision output - float32 output| / max |float32 output| per family's tiny case under autocast on the
# CPU (tests/test_device_dtype.py asserts it; bfloat16 keeps 8 bits of mantissa, so ~1e-2 relative is its scale)
LOW_PRECISION_TOLERANCE = {"bfloat16": 0.1, "float16": 0.02}


class DeviceUnavailableError(ValueError):
    """A device was asked for that this machine or this torch build does not have."""


def check_device(device: Any) -> None:
    """Refuse a device this machine does not have, naming what it has (never a silent fall-back to the CPU)."""
    import torch

    if device is None:
        return
    text = str(device)
    kind, _, index = text.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no usable CUDA device"
            raise DeviceUnavailableError(
                f"device {text}: this machine has {build} (torch {torch.__version__}); use device cpu")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise DeviceUnavailableError(
                f"device {text}: there {'is' if count == 1 else 'are'} {count} CUDA device"
                f"{'' if count == 1 else 's'} (cuda:0{'' if count == 1 else f' to cuda:{count - 1}'})")
    elif kind == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceUnavailableError(f"device {text}: MPS is not available here; use device cpu")
    elif kind != "cpu":
        raise DeviceUnavailableError(f"unknown device {text!r}; use cpu, cuda, cuda:N or mps")


def resolve_dtype(dtype: Any):
    """"float32" / "bfloat16" / "float16" (or a torch dtype, or None = float32) -> torch dtype; anything else is
    an error naming the choices."""
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        name = str(dtype).removeprefix("torch.")
    else:
        name = str(dtype).removeprefix("torch.")
    if name not in DTYPE_NAMES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_NAMES)}")
    return getattr(torch, name)


def autocast(device: Any, dtype: Any):
    """A context in which the model runs at `dtype`: nothing for float32, else `torch.autocast` on the device's
    type (weights stay float32)."""
    import torch

    resolved = resolve_dtype(dtype)
    if resolved == torch.float32:
        return contextlib.nullcontext()
    device_type = torch.device(device if device is not None else "cpu").type
    return torch.autocast(device_type=device_type, dtype=resolved)


class _CompiledForward:
    """The compiled forward, or the eager one from the first call on which compiling failed (warned once). An
    error that the eager forward raises too (bad input) is the eager error, without a warning."""

    def __init__(self, eager, compiled, name: str):
        self.eager, self.compiled, self.name, self.failed = eager, compiled, name, False

    def __call__(self, *args, **kwargs):
        if self.failed:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - any compile failure falls back; the eager call re-raises real ones
            output = self.eager(*args, **kwargs)
            self.failed = True
            first_line = (str(error).strip().splitlines() or [""])[0][:300]
            warnings.warn(f"torch.compile of {self.name} failed ({type(error).__name__}: {first_line}); running it "
                          "eagerly", RuntimeWarning, stacklevel=2)
            return output


def compile_model(model, backend: str | None = None, **options):
    """Compile the base model (the encoder) of a transformers model in place and return the model. Heads are
    small and stay eager. `backend=None` is torch's default (inductor); "eager" / "aot_eager" check the tracing
    without code generation."""
    import torch

    target = getattr(model, "base_model", model)
    if isinstance(target.forward, _CompiledForward):
        return model
    kwargs = dict(options)
    if backend is not None:
        kwargs["backend"] = backend
    compiled = torch.compile(target.forward, **kwargs)
    target.forward = _CompiledForward(target.forward, compiled, type(target).__name__)
    return model


def is_compiled(model) -> bool:
    """Whether `compile_model` wrapped this model's base model (and it has not fallen back to eager)."""
    forward = getattr(getattr(model, "base_model", model), "forward", None)
    return isinstance(forward, _CompiledForward) and not forward.failed


# Clips (or 10 s windows) per forward pass when the caller does not say: on the CPU, convolutional models are
# faster one clip at a time (their batched activations overflow the cache; bench/bench_batch_policy.py measures
# it), transformers gain a little from batches; on a GPU, batches fill the device.
CPU_BATCH_SIZE = {"audiozoo-byol-a": 1, "audiozoo-frame-mn": 1}
DEFAULT_CPU_BATCH_SIZE = 8
DEFAULT_GPU_BATCH_SIZE = 32


def default_batch_size(model_type: str | None, device: Any) -> int:
    """`config.model_type` and a device -> the batch size the pipelines, the runner and the CLI use when none is given, per device and family."""
    kind = str(device if device is not None else "cpu").partition(":")[0]
    if kind != "cpu":
        return DEFAULT_GPU_BATCH_SIZE
    return CPU_BATCH_SIZE.get(model_type or "", DEFAULT_CPU_BATCH_SIZE)


__all__ = [
    "DTYPE_NAMES",
    "DeviceUnavailableError",
    "LOW_PRECISION_TOLERANCE",
    "autocast",
    "check_device",
    "compile_model",
    "default_batch_size",
    "is_compiled",
    "resolve_dtype",
]
