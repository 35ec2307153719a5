"""ASiT: encoder and sound-event detector (PretrainedSED)."""

from .feature_extraction_asit import AsitFeatureExtractor
from .configuration_asit import AsitConfig
from .modeling_asit import (
    AsitForAudioClassification,
    AsitForAudioFrameClassification,
    AsitModel,
    AsitPreTrainedModel,
)

__all__ = [
    "AsitConfig",
    "AsitFeatureExtractor",
    "AsitForAudioClassification",
    "AsitForAudioFrameClassification",
    "AsitModel",
    "AsitPreTrainedModel",
]
