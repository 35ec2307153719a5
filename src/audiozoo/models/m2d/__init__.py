"""M2D: encoder and sound-event detector (PretrainedSED)."""

from .feature_extraction_m2d import M2dFeatureExtractor
from .configuration_m2d import M2dConfig
from .modeling_m2d import (
    M2dForAudioClassification,
    M2dForAudioFrameClassification,
    M2dModel,
    M2dPreTrainedModel,
)

__all__ = [
    "M2dConfig",
    "M2dFeatureExtractor",
    "M2dForAudioClassification",
    "M2dForAudioFrameClassification",
    "M2dModel",
    "M2dPreTrainedModel",
]
