"""Audio Spectrogram Transformer: encoder, clip classifier, frame classifier."""

from .configuration_ast import AstConfig
from .feature_extraction_ast import AST_PRESETS, AstFeatureExtractor
from .modeling_ast import AstForAudioClassification, AstForAudioFrameClassification, AstModel, AstPreTrainedModel

__all__ = [
    "AST_PRESETS",
    "AstConfig",
    "AstFeatureExtractor",
    "AstForAudioClassification",
    "AstForAudioFrameClassification",
    "AstModel",
    "AstPreTrainedModel",
]
