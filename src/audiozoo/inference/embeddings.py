"""Clip and frame embeddings from any encoder of the package (used by `audiozoo embed` and `audiozoo probe`)."""

from __future__ import annotations

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioFrameClassification,
)

from ..layers.heads import masked_mean
from ..pipelines.audio_input import decode_audio_input, minimum_samples
from ..runtime import autocast, check_device, compile_model

# architecture-name suffix of a classifier checkpoint -> the Auto class that loads all of its weights
CLASSIFIER_AUTO_CLASSES = {
    "ForAudioFrameClassification": AutoModelForAudioFrameClassification,
    "ForAudioClassification": AutoModelForAudioClassification,
}


def load_encoder(model_name_or_path: str, device: str = "cpu", compile: bool = False):
    """(feature extractor, encoder in eval mode on `device`, compiled with `compile=True`) for a converted folder or
    Hub id. A device this machine lacks is a `DeviceUnavailableError` before anything loads.

    A classifier's folder is loaded with its own class and its encoder taken out (`base_model`): loading it with
    AutoModel would leave the head's weights over and make transformers print a load report on every call, while
    the encoder's weights are the same either way."""
    check_device(device)
    feature_extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
    config = AutoConfig.from_pretrained(model_name_or_path)
    architecture = (getattr(config, "architectures", None) or [""])[0]
    auto_class = next((auto for suffix, auto in CLASSIFIER_AUTO_CLASSES.items() if architecture.endswith(suffix)),
                      AutoModel)
    model = auto_class.from_pretrained(model_name_or_path, config=config, dtype=torch.float32)
    encoder = model.base_model.to(device).eval()
    return feature_extractor, compile_model(encoder) if compile else encoder


@torch.no_grad()
def embed_audio(feature_extractor, model, audio, level: str = "clip", device: str = "cpu", *,
                allow_truncated: bool = False, dtype: str = "float32") -> np.ndarray:
    """One clip (path, array or dict; any rate) -> [D] clip embedding (the model's pooled output, else the mean of
    its valid tokens) or [T, D] per-time-step features, float32. The audio gets `decode_audio_input`'s checks
    (truncated files unless `allow_truncated`, NaN/Inf, clips shorter than the model takes). `dtype` "bfloat16" /
    "float16" runs the model under torch.autocast (features in float32; `audiozoo.runtime`)."""
    if level not in ("clip", "frame"):
        raise ValueError(f"level must be 'clip' or 'frame', got {level!r}")
    waveform = decode_audio_input(audio, feature_extractor.sampling_rate, allow_truncated=allow_truncated,
                                  minimum_samples=minimum_samples(feature_extractor))
    inputs = feature_extractor(waveform, sampling_rate=feature_extractor.sampling_rate, device=device)
    with autocast(device, dtype):
        encoded = model(**inputs)
    if level == "frame":
        return model.frame_features(encoded)[0][0].float().cpu().numpy()
    pooled = getattr(encoded, "pooler_output", None)
    if pooled is None:
        pooled = masked_mean(encoded.last_hidden_state.float(), getattr(encoded, "attention_mask", None))
    return pooled[0].float().cpu().numpy()
