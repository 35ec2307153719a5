"""The offline default model: a small drum-hit classifier trained from scratch by examples/drums/train.sh.

It ships inside the package (a few hundred kB of safetensors), so `audiozoo classify FILE` and
`audiozoo.default_classifier()` work without a download. Classes: crash, hihat, kick, ride, snare, tom.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def default_model_path() -> Path:
    """Folder of the bundled drum-hit classifier (config.json, model.safetensors, preprocessor_config.json)."""
    folder = Path(str(resources.files("audiozoo").joinpath("default_model")))
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"the bundled default model is missing from {folder}; reinstall audiozoo")
    return folder


def default_classifier(device: str | int | None = None):
    """`pipeline("audio-classification")` on the bundled drum-hit classifier (any file or array; resampled)."""
    import torch
    from transformers import pipeline

    return pipeline("audio-classification", model=str(default_model_path()), device=device, dtype=torch.float32)


__all__ = ["default_classifier", "default_model_path"]
