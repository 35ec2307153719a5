"""Check that a converted folder reloads through the Auto classes with exactly the converted weights.

Two models with bit-identical tensors can still give outputs that differ in the last bits on CPU: safetensors packs
tensors at 8-byte offsets in the file, transformers loads them as views at those offsets, and MKL's GEMM (used by
`nn.Linear` and 1x1 convolutions) takes another vectorised path, so another summation order, for operands that are
not 64-byte aligned. Re-allocating the reloaded tensors (aligned) makes the outputs bit-identical again; the feature
extractors and models themselves are deterministic (no dropout in eval mode, no random op, same kernels run twice
give the same bits). So the round trip compares the weights exactly and the outputs within a tolerance relative to
their scale, which the last-bit drift of a deep network (about 2e-5 of the output scale for frame-MobileNet at
width 1.0) stays far inside.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioFrameClassification,
)

from .common import CheckpointError

AUTO_CLASS_BY_HEAD = {
    "ForAudioClassification": AutoModelForAudioClassification,
    "ForAudioFrameClassification": AutoModelForAudioFrameClassification,
}

OUTPUT_ATOL = 1e-5
"""Absolute part of the output tolerance (outputs near zero)."""

OUTPUT_RTOL_OF_SCALE = 1e-4
"""Relative part: a fraction of the largest absolute output, not of each element (near-zero elements of a large
output carry the rounding of the large ones)."""


def auto_class_for(config):
    """The Auto class that loads `config.architectures[0]` (clip head, frame head, or the encoder)."""
    architecture = config.architectures[0]
    return next((auto for suffix, auto in AUTO_CLASS_BY_HEAD.items() if architecture.endswith(suffix)), AutoModel)


def outputs_agree(expected: torch.Tensor, actual: torch.Tensor) -> bool:
    """Whether two outputs of models with identical weights agree up to kernel rounding (see the module docstring)."""
    if expected.shape != actual.shape:
        return False
    if not expected.is_floating_point():
        return bool(torch.equal(expected, actual))
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    return bool(((expected - actual).abs() <= OUTPUT_ATOL + OUTPUT_RTOL_OF_SCALE * scale).all())


def compare_state_dicts(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor], source: str) -> None:
    """Raise CheckpointError unless `actual` holds exactly the tensors of `expected` (keys, dtypes, shapes, values)."""
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source}: missing weights {missing[:10]}, unexpected weights {unexpected[:10]}")
    for key, tensor in expected.items():
        other = actual[key]
        if other.dtype != tensor.dtype or other.shape != tensor.shape:
            raise CheckpointError(f"{source}: {key} is {other.dtype} {tuple(other.shape)}, "
                                  f"converted {tensor.dtype} {tuple(tensor.shape)}")
        if not torch.equal(other, tensor):
            raise CheckpointError(f"{source}: {key} differs from the converted weight "
                                  f"(max abs diff {float((other - tensor).abs().max()):.3g})")


def verify_round_trip(model: torch.nn.Module, feature_extractor, output_dir: str | Path) -> float:
    """Reload `output_dir` with the Auto class of its architecture; check its weights equal `model`'s exactly, its
    feature extractor gives the same features, and its outputs on a fixed signal agree (`outputs_agree`).

    Returns the max abs difference of the outputs; raises CheckpointError on any mismatch.
    """
    output_dir = Path(output_dir)
    config = AutoConfig.from_pretrained(output_dir)
    reloaded_fe = AutoFeatureExtractor.from_pretrained(output_dir)
    architecture = config.architectures[0]
    model_class = type(model)
    if model_class.__name__ != architecture:
        raise CheckpointError(f"{output_dir} declares {architecture}, expected {model_class.__name__}")
    auto_class = auto_class_for(config)
    reloaded = auto_class.from_pretrained(output_dir, dtype=torch.float32).eval()
    if type(reloaded) is not model_class:
        raise CheckpointError(f"{auto_class.__name__} loaded {type(reloaded).__name__} from {output_dir}, expected {architecture}")
    compare_state_dicts(model.state_dict(), reloaded.state_dict(), str(output_dir))

    rate = reloaded_fe.sampling_rate
    time = np.arange(rate, dtype=np.float32) / rate
    signal = (0.1 * np.sin(2 * np.pi * 440.0 * time) + 0.01 * np.cos(2 * np.pi * 3000.0 * time)).astype(np.float32)
    inputs = feature_extractor(signal, sampling_rate=rate, return_tensors="pt")
    reloaded_inputs = reloaded_fe(signal, sampling_rate=rate, return_tensors="pt")
    for name, value in inputs.items():
        if not torch.equal(value, reloaded_inputs[name]):
            raise CheckpointError(f"{output_dir}: the saved feature extractor gives other {name} than the converted one")
    with torch.no_grad():
        expected = model(**inputs)[0]
        actual = reloaded(**reloaded_inputs)[0]
    difference = float((expected - actual).abs().max())
    if not outputs_agree(expected, actual):
        raise CheckpointError(f"{output_dir} does not reproduce the converted model: max abs diff {difference:.3g} "
                              f"(allowed {OUTPUT_ATOL:g} + {OUTPUT_RTOL_OF_SCALE:g} x {float(expected.abs().max()):.3g})")
    return difference
