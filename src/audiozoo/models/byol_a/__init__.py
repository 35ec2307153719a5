"""BYOL-A v1 and v2 audio encoders, with linear clip and frame heads."""

from .configuration_byol_a import ByolAConfig
from .feature_extraction_byol_a import BYOL_A_NORM_PRESETS, ByolAFeatureExtractor
from .modeling_byol_a import (
    ByolAForAudioClassification,
    ByolAForAudioFrameClassification,
    ByolAModel,
    ByolAPreTrainedModel,
)

__all__ = [
    "BYOL_A_NORM_PRESETS",
    "ByolAConfig",
    "ByolAFeatureExtractor",
    "ByolAForAudioClassification",
    "ByolAForAudioFrameClassification",
    "ByolAModel",
    "ByolAPreTrainedModel",
]
