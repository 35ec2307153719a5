"""Pipelines: audio classification with our own decoding and resampling."""

from .audio_classification import AudiozooAudioClassificationPipeline, register_audio_classification_pipeline
from .audio_input import decode_audio_input

__all__ = ["AudiozooAudioClassificationPipeline", "decode_audio_input", "register_audio_classification_pipeline"]
