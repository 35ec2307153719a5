"""What every released-size check shares: the Release record, seeded weights, the conversion script, a clip."""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
CONVERSION_SCRIPTS = REPO / "conversion_scripts"


@dataclass(frozen=True)
class Release:
    """One released architecture, at its released size.

    name: the model card's name (model_cards/<name>.md).
    script: the conversion script's family (conversion_scripts/convert_<script>_original_to_hf.py).
    filename: the original file name (conversions read strides, widths or kinds from it).
    build: a model of the package at the released size, with the weights the original file will hold.
    write: turns that model into what the original code saves (torch.save'd as `filename`); the same function
        as the family's PARITY_LAYOUTS entry, so the layout is the one the parity cases prove.
    convert_args: further arguments of the conversion script (e.g. --model_name, --dataset).
    expect: config attributes the converted folder must have (hidden size, layers, classes, ...).
    output: what to compare between the source and the converted model, given a model and its inputs (default
        `first_output(model(**inputs))`); files without usable heads (the conversion initialises fresh ones, as the
        original loader does) compare the encoder, e.g. `encoder_output`.
    clip_seconds: length of the test clip (shorter for models trained on shorter inputs).
    """

    name: str
    script: str
    filename: str
    build: Callable[[], torch.nn.Module]
    write: Callable[[torch.nn.Module], object]
    convert_args: tuple[str, ...] = ()
    expect: dict = field(default_factory=dict)
    output: Callable[[torch.nn.Module, dict], torch.Tensor] | None = None
    clip_seconds: float = 2.0

    def compared_output(self, model: torch.nn.Module, inputs: dict) -> torch.Tensor:
        with torch.no_grad():
            return self.output(model, inputs) if self.output else first_output(model(**inputs))


def perturb_(model: torch.nn.Module, seed: int, scale: float = 0.02) -> torch.nn.Module:
    """Make every floating tensor of `model` non-trivial and seeded, as the parity cases do: parameters and BatchNorm
    means get seeded noise, BatchNorm variances a positive draw. Returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            else:
                tensor.add_(scale * torch.randn(tensor.shape, generator=generator))
    return model.eval()


def run_conversion_script(script: str, checkpoint: Path, output_dir: Path, *args: str) -> None:
    """Run conversion_scripts/convert_<script>_original_to_hf.py in this process, as a user would from a shell."""
    path = CONVERSION_SCRIPTS / f"convert_{script}_original_to_hf.py"
    argv = [str(path), "--checkpoint_path", str(checkpoint), "--pytorch_dump_folder_path", str(output_dir), *args]
    saved = sys.argv
    sys.argv = argv
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise AssertionError(f"{path.name} exited with {exit_.code}") from None
    finally:
        sys.argv = saved


def short_clip(sampling_rate: int, seconds: float = 2.0) -> np.ndarray:
    """A deterministic float32 clip (two tones and a little noise) at `sampling_rate`."""
    time = np.arange(int(seconds * sampling_rate)) / sampling_rate
    rng = np.random.default_rng(0)
    signal = 0.2 * np.sin(2 * np.pi * 440 * time) + 0.05 * np.sin(2 * np.pi * 2500 * time)
    return (signal + 0.01 * rng.standard_normal(time.size)).astype(np.float32)


def first_output(outputs) -> torch.Tensor:
    """The tensor a comparison should look at: logits where there are any, else the first output."""
    for name in ("logits", "last_hidden_state", "codebook_ids"):
        value = getattr(outputs, name, None)
        if value is not None:
            return value
    return outputs[0]


def encoder_output(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    """The encoder's last hidden state (for files whose heads the conversion initialises afresh)."""
    return model.base_model(**inputs).last_hidden_state


def assert_same_container(written, original, where: str = "checkpoint") -> None:
    """`written` (from a family's `to_original`) equals `original` (a real file of the original code): same nested
    dict/list structure, same keys, tensors of the same dtype and shape with equal values, equal plain values."""
    if isinstance(original, torch.Tensor):
        assert isinstance(written, torch.Tensor), f"{where}: expected a tensor, got {type(written).__name__}"
        assert written.dtype == original.dtype, f"{where}: dtype {written.dtype}, original {original.dtype}"
        assert written.shape == original.shape, f"{where}: shape {tuple(written.shape)}, original {tuple(original.shape)}"
        assert torch.equal(written, original), f"{where}: values differ (max {(written - original).abs().max()})"
    elif isinstance(original, dict):
        assert isinstance(written, dict), f"{where}: expected a dict, got {type(written).__name__}"
        missing, extra = sorted(set(original) - set(written)), sorted(set(written) - set(original))
        assert not missing and not extra, f"{where}: missing keys {missing[:10]}, extra keys {extra[:10]}"
        assert list(written) == list(original), f"{where}: same keys in another order"
        for key in original:
            assert_same_container(written[key], original[key], f"{where}[{key!r}]")
    elif isinstance(original, (list, tuple)):
        assert type(written) is type(original) and len(written) == len(original), f"{where}: {written!r} != {original!r}"
        for index, (mine, theirs) in enumerate(zip(written, original)):
            assert_same_container(mine, theirs, f"{where}[{index}]")
    else:
        assert written == original, f"{where}: {written!r} != {original!r}"
