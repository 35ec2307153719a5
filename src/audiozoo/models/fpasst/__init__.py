"""frame-PaSST: frame-level encoder and sound-event detector (PretrainedSED)."""

from .feature_extraction_fpasst import PasstMelFeatureExtractor
from .configuration_fpasst import FpasstConfig
from .modeling_fpasst import (
    FpasstForAudioClassification,
    FpasstForAudioFrameClassification,
    FpasstModel,
    FpasstPreTrainedModel,
)

__all__ = [
    "FpasstConfig",
    "FpasstForAudioClassification",
    "FpasstForAudioFrameClassification",
    "FpasstModel",
    "FpasstPreTrainedModel",
    "PasstMelFeatureExtractor",
]
