"""Clip and frame embeddings from any encoder of the package (used by `audiozoo embed` and `audiozoo probe`)."""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModel

from ..layers.heads import masked_mean
from ..pipelines.audio_input import decode_audio_input


def load_encoder(model_name_or_path: str, device: str = "cpu"):
    """(feature extractor, encoder in eval mode) for a converted folder or Hub id."""
    feature_extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
    model = AutoModel.from_pretrained(model_name_or_path, dtype=torch.float32).to(device).eval()
    return feature_extractor, model


@torch.no_grad()
def embed_audio(feature_extractor, model, audio, level: str = "clip", device: str = "cpu") -> np.ndarray:
    """One clip (path, array or dict; any rate) -> [D] clip embedding (the model's pooled output, else the mean of
    its valid tokens) or [T, D] per-time-step features."""
    if level not in ("clip", "frame"):
        raise ValueError(f"level must be 'clip' or 'frame', got {level!r}")
    waveform = decode_audio_input(audio, feature_extractor.sampling_rate)
    inputs = feature_extractor(waveform, sampling_rate=feature_extractor.sampling_rate, device=device)
    encoded = model(**inputs)
    if level == "frame":
        return model.frame_features(encoded)[0][0].cpu().numpy()
    pooled = getattr(encoded, "pooler_output", None)
    if pooled is None:
        pooled = masked_mean(encoded.last_hidden_state, getattr(encoded, "attention_mask", None))
    return pooled[0].cpu().numpy()
