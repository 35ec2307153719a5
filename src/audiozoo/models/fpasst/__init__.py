"""frame-PaSST: frame-level encoder and sound-event detector (PretrainedSED)."""

from ...sed_feature_extraction import PasstMelFeatureExtractor
from .configuration_fpasst import FpasstConfig
from .modeling_fpasst import FpasstForAudioFrameClassification, FpasstModel, FpasstPreTrainedModel

__all__ = [
    "FpasstConfig",
    "FpasstForAudioFrameClassification",
    "FpasstModel",
    "FpasstPreTrainedModel",
    "PasstMelFeatureExtractor",
]
