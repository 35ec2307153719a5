"""BEATs audio encoder, fine-tuned classifier, frame classifier and acoustic tokenizer."""

from .configuration_beats import BeatsConfig, BeatsTokenizerConfig
from .feature_extraction_beats import BeatsFeatureExtractor
from .modeling_beats import (
    BeatsTokenizerModel,
    BeatsForAudioClassification,
    BeatsForAudioFrameClassification,
    BeatsModel,
    BeatsPreTrainedModel,
)

__all__ = [
    "BeatsTokenizerModel",
    "BeatsConfig",
    "BeatsFeatureExtractor",
    "BeatsForAudioClassification",
    "BeatsForAudioFrameClassification",
    "BeatsModel",
    "BeatsPreTrainedModel",
    "BeatsTokenizerConfig",
]
