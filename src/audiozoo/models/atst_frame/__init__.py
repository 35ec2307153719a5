"""ATST-Frame: frame-level encoder and sound-event detector (PretrainedSED)."""

from .feature_extraction_atst_frame import AtstFrameFeatureExtractor
from .configuration_atst_frame import AtstFrameConfig
from .modeling_atst_frame import (
    AtstFrameForAudioClassification,
    AtstFrameForAudioFrameClassification,
    AtstFrameModel,
    AtstFramePreTrainedModel,
)

__all__ = [
    "AtstFrameConfig",
    "AtstFrameFeatureExtractor",
    "AtstFrameForAudioClassification",
    "AtstFrameForAudioFrameClassification",
    "AtstFrameModel",
    "AtstFramePreTrainedModel",
]
