"""Where and how inference runs: the device (checked, never a silent CPU fall-back), the compute dtype (autocast)
and torch.compile with a fall-back. One place for the pipelines, the dataset runner, the CLI and the benchmarks.

- `--dtype float32` (the default) runs as the originals did. `bfloat16` / `float16` keep the weights and the front
  end in float32 and run the model under `torch.autocast`: matrix products and convolutions in the low precision,
  reductions and normalisations in float32 as autocast decides. The outputs differ from float32 by the bound
  `low_precision_tolerance` states for the family (checked per family in tests/test_device_dtype.py).
- `compile_model` wraps the base model's forward in `torch.compile`; where compiling fails (no C++ compiler, an
  unsupported operation) the first call warns once (`CompileFallbackWarning`) and the model runs eagerly from then
  on. Compiling costs tens of seconds at the first batch (and again for each new input shape, up to dynamic shapes);
  it pays off on long runs on a GPU.

torch is imported inside the functions, so that the command line's `--help` stays fast.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

DTYPE_NAMES = ("float32", "bfloat16", "float16")

# Bound on max |low-precision output - float32 output| / max |float32 output| (logits, hidden states, embeddings)
# under autocast, asserted per family on its parity case on the CPU by tests/test_device_dtype.py. Measured there
# (torch 2.13, CPU): bfloat16 at most 0.021 (PretrainedSED RNN-attention head; transformers 0.004-0.011), float16
# at most 0.0033; the bounds leave about 2-3x margin. bfloat16 keeps 8 bits of mantissa (float16 11), so ~1e-2
# relative is its scale.
LOW_PRECISION_TOLERANCE = {"bfloat16": 0.05, "float16": 0.01}
# Families whose error grows with depth beyond that: frame-MobileNet's 17 convolution stages add ~1% each in
# bfloat16 (measured 0.19 of the largest frame logit, 0.46 in a frame probability; float16 0.023 and 0.045).
LOW_PRECISION_TOLERANCE_BY_FAMILY = {"audiozoo-frame-mn": {"bfloat16": 0.3, "float16": 0.05}}


def low_precision_tolerance(model_type: str | None, dtype: Any) -> float:
    """The bound above for a family (`config.model_type`) and a compute dtype name; 0.0 for float32."""
    name = str(dtype or "float32").removeprefix("torch.")
    if name == "float32":
        return 0.0
    if name not in LOW_PRECISION_TOLERANCE:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_NAMES)}")
    return LOW_PRECISION_TOLERANCE_BY_FAMILY.get(model_type or "", LOW_PRECISION_TOLERANCE)[name]


def low_precision_note(model_type: str | None, dtype: Any) -> str | None:
    """A warning for a family whose outputs at `dtype` stray further from float32 than the usual bound, else None
    (the command line prints it)."""
    bound = low_precision_tolerance(model_type, dtype)
    if bound <= LOW_PRECISION_TOLERANCE.get(str(dtype).removeprefix("torch."), bound):
        return None
    return (f"{model_type} under {str(dtype).removeprefix('torch.')} differs from float32 by up to {bound:g} of "
            "the largest output (measured on its parity case; other families stay within "
            f"{LOW_PRECISION_TOLERANCE[str(dtype).removeprefix('torch.')]:g}); use float32 where that matters")


class LowPrecisionWarning(UserWarning):
    """A family whose outputs at bfloat16 / float16 stray further from float32 than the usual bound."""


def warn_low_precision(model_type: str | None, dtype: Any) -> None:
    """Warn (`LowPrecisionWarning`) where `low_precision_note` has a note for this family and dtype."""
    note = low_precision_note(model_type, dtype)
    if note is not None:
        warnings.warn(note, LowPrecisionWarning, stacklevel=2)


class CompileFallbackWarning(RuntimeWarning):
    """torch.compile failed for a model, which then runs eagerly (same outputs, eager speed)."""


class DeviceUnavailableError(ValueError):
    """A device was asked for that this machine or this torch build does not have."""


def check_device(device: Any, flag: str = "device") -> None:
    """Refuse a device this machine does not have, naming what it has (never a silent fall-back to the CPU).

    `device`: None (the caller's default), "cpu", "cuda", "cuda:N", "mps", a torch.device, or an int as
    transformers' pipelines take it (-1: the CPU, N >= 0: accelerator N). `flag` is how the messages name the
    setting ("--device" on the command line)."""
    import torch

    if device is None:
        return
    if isinstance(device, int) and not isinstance(device, bool):
        if device < 0:
            return
        if torch.cuda.is_available():
            device = f"cuda:{device}"
        elif device == 0 and _mps_available(torch):
            return
        else:
            raise DeviceUnavailableError(
                f"{flag} {device} (accelerator {device}): this machine has no CUDA or MPS device "
                f"({_cuda_build(torch)}); use {flag} cpu (or -1)")
    text = str(device)
    kind, _, index = text.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"{flag} {text}: this machine has {_cuda_build(torch)}; use {flag} cpu")
        count = torch.cuda.device_count()
        if index and (not index.isdigit() or int(index) >= count):
            raise DeviceUnavailableError(
                f"{flag} {text}: there {'is' if count == 1 else 'are'} {count} CUDA device"
                f"{'' if count == 1 else 's'} (cuda:0{'' if count == 1 else f' to cuda:{count - 1}'})")
    elif kind == "mps":
        if not _mps_available(torch):
            raise DeviceUnavailableError(f"{flag} {text}: MPS is not available here; use {flag} cpu")
    elif kind != "cpu":
        raise DeviceUnavailableError(f"unknown {flag} {text!r}; use cpu, cuda, cuda:N or mps")


def _cuda_build(torch) -> str:
    """Why CUDA is missing, for an error message: the torch build, or the machine."""
    what = "a CPU-only torch build" if torch.version.cuda is None else "no usable CUDA device"
    return f"{what} (torch {torch.__version__})"


def _mps_available(torch) -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


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
                          "eagerly", CompileFallbackWarning, stacklevel=2)
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


# Clips (or 10 s windows) per forward pass when the caller does not say. CPU, from `python bench/bench_batch_policy.py
# --threads 1 2` (released sizes, 10 s clips, front end + model, 2-core AMD EPYC shared with other jobs):
# - the conv models are fastest one clip at a time: a batch's activations leave the cache (BYOL-A's first block is
#   16 MB a clip; 32 MB L3). One thread: BYOL-A batch 1 44 clips/s, batch 4 18, batch 16 15; frame-MobileNet 1.0
#   19 / 17 / 11 (batch 2 within 3% of batch 1).
# - AST (1214 tokens) is fastest at batch 1 too (one thread, batch 8 6-19% slower).
# - the other transformers are within ~5% of batch 1 at one thread (ASiT best at 4, 8 slightly slower), and faster
#   in batches when the two cores are busy with other work (two threads: batch 8 1.4-1.7x batch 1 for BEATs, EAT,
#   ASiT, ~3x for ATST-Frame and fPaSST): fewer, larger operations wait less for a descheduled thread.
# Two threads on cores busy with other jobs favour large batches for every family (the conv models too: batch 16
# 2-3x batch 1), but run 5-15x slower than one thread; one thread is the remedy there, and at one thread the
# sizes below hold.
# On a GPU, batches fill the device (not measured here).
CPU_BATCH_SIZE = {
    "audiozoo-beats": 8, "audiozoo-beats-tokenizer": 8, "audiozoo-ast": 1, "audiozoo-eat": 8, "audiozoo-byol-a": 1,
    "audiozoo-atst-frame": 8, "audiozoo-fpasst": 8, "audiozoo-asit": 4, "audiozoo-m2d": 8, "audiozoo-frame-mn": 1,
}
DEFAULT_CPU_BATCH_SIZE = 8  # a model type the table does not list
DEFAULT_GPU_BATCH_SIZE = 32


def default_batch_size(model_type: str | None, device: Any) -> int:
    """`config.model_type` and a device -> the batch size the pipelines, the runner and the CLI use when none is given, per device and family."""
    kind = str(device if device is not None else "cpu").partition(":")[0]
    if kind != "cpu":
        return DEFAULT_GPU_BATCH_SIZE
    return CPU_BATCH_SIZE.get(model_type or "", DEFAULT_CPU_BATCH_SIZE)


__all__ = [
    "DTYPE_NAMES",
    "CompileFallbackWarning",
    "DeviceUnavailableError",
    "LOW_PRECISION_TOLERANCE",
    "LOW_PRECISION_TOLERANCE_BY_FAMILY",
    "LowPrecisionWarning",
    "autocast",
    "check_device",
    "compile_model",
    "default_batch_size",
    "is_compiled",
    "low_precision_note",
    "low_precision_tolerance",
    "resolve_dtype",
    "warn_low_precision",
]
