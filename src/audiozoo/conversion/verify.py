"""Check that a converted folder reloads through the Auto classes and reproduces the in-memory model."""

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


def verify_round_trip(model: torch.nn.Module, feature_extractor, output_dir: str | Path, atol: float = 1e-5) -> float:
    """Reload `output_dir` with the Auto class of its architecture and compare outputs on a fixed signal.

    Returns the max abs difference; raises CheckpointError if it exceeds `atol`.
    """
    output_dir = Path(output_dir)
    config = AutoConfig.from_pretrained(output_dir)
    reloaded_fe = AutoFeatureExtractor.from_pretrained(output_dir)
    architecture = config.architectures[0]
    model_class = type(model)
    if model_class.__name__ != architecture:
        raise CheckpointError(f"{output_dir} declares {architecture}, expected {model_class.__name__}")
    auto_class = next(
        (auto for suffix, auto in AUTO_CLASS_BY_HEAD.items() if architecture.endswith(suffix)), AutoModel
    )
    reloaded = auto_class.from_pretrained(output_dir, dtype=torch.float32).eval()
    if type(reloaded) is not model_class:
        raise CheckpointError(f"{auto_class.__name__} loaded {type(reloaded).__name__} from {output_dir}, expected {architecture}")

    rate = reloaded_fe.sampling_rate
    time = np.arange(rate, dtype=np.float32) / rate
    signal = 0.1 * np.sin(2 * np.pi * 440.0 * time) + 0.01 * np.cos(2 * np.pi * 3000.0 * time)
    inputs = feature_extractor(signal.astype(np.float32), sampling_rate=rate, return_tensors="pt")
    reloaded_inputs = reloaded_fe(signal.astype(np.float32), sampling_rate=rate, return_tensors="pt")
    with torch.no_grad():
        expected = model(**inputs)[0]
        actual = reloaded(**reloaded_inputs)[0]
    difference = float((expected - actual).abs().max())
    if difference > atol:
        raise CheckpointError(f"{output_dir} does not reproduce the converted model: max abs diff {difference:.3g}")
    return difference
