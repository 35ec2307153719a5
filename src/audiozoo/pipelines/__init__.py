"""Pipelines: audio classification and sound-event detection, with our own decoding and resampling."""

from .audio_classification import AudiozooAudioClassificationPipeline, register_audio_classification_pipeline
from .audio_input import decode_audio_input
from .sound_event_detection import SoundEventDetectionPipeline, register_sound_event_detection_pipeline

__all__ = [
    "AudiozooAudioClassificationPipeline",
    "SoundEventDetectionPipeline",
    "decode_audio_input",
    "register_audio_classification_pipeline",
    "register_sound_event_detection_pipeline",
]
