"""EAT: encoder, clip classifier, frame classifier."""

from .configuration_eat import EatConfig
from .feature_extraction_eat import EAT_PRESETS, EatFeatureExtractor
from .modeling_eat import (
    EatForAudioClassification,
    EatForAudioFrameClassification,
    EatModel,
    EatPreTrainedModel,
    sincos_position_table,
)

__all__ = [
    "EAT_PRESETS",
    "EatConfig",
    "EatFeatureExtractor",
    "EatForAudioClassification",
    "EatForAudioFrameClassification",
    "EatModel",
    "EatPreTrainedModel",
    "sincos_position_table",
]
