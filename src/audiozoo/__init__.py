"""audiozoo: published pretrained audio models as exact, fast Hugging Face transformers ports.

Importing the package registers every model with the transformers Auto classes and the pipelines.
"""

from .models.ast import (
    AstConfig,
    AstFeatureExtractor,
    AstForAudioClassification,
    AstForAudioFrameClassification,
    AstModel,
)
from .models.byol_a import (
    ByolAConfig,
    ByolAFeatureExtractor,
    ByolAForAudioClassification,
    ByolAForAudioFrameClassification,
    ByolAModel,
)
from .models.eat import (
    EatConfig,
    EatFeatureExtractor,
    EatForAudioClassification,
    EatForAudioFrameClassification,
    EatModel,
)
from .models.beats import (
    BeatsTokenizerModel,
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForAudioClassification,
    BeatsForAudioFrameClassification,
    BeatsModel,
    BeatsTokenizerConfig,
)
from .models.asit import AsitConfig, AsitFeatureExtractor, AsitForAudioFrameClassification, AsitModel
from .models.atst_frame import (
    AtstFrameConfig,
    AtstFrameFeatureExtractor,
    AtstFrameForAudioFrameClassification,
    AtstFrameModel,
)
from .models.fpasst import FpasstConfig, FpasstForAudioFrameClassification, FpasstModel, PasstMelFeatureExtractor
from .models.frame_mn import FrameMnConfig, FrameMnForAudioFrameClassification, FrameMnModel
from .models.m2d import M2dConfig, M2dFeatureExtractor, M2dForAudioFrameClassification, M2dModel
from .default_model import default_classifier
from .sed_head import SedHeadSettings
from .pipelines import register_audio_classification_pipeline, register_sound_event_detection_pipeline
from .registration import register_models

register_models()
register_audio_classification_pipeline()
register_sound_event_detection_pipeline()

__version__ = "0.1.0"

__all__ = [
    "default_classifier",
    "AsitConfig",
    "AsitFeatureExtractor",
    "AsitForAudioFrameClassification",
    "AsitModel",
    "AtstFrameConfig",
    "AtstFrameFeatureExtractor",
    "AtstFrameForAudioFrameClassification",
    "AtstFrameModel",
    "FpasstConfig",
    "FpasstForAudioFrameClassification",
    "FpasstModel",
    "FrameMnConfig",
    "FrameMnForAudioFrameClassification",
    "FrameMnModel",
    "M2dConfig",
    "M2dFeatureExtractor",
    "M2dForAudioFrameClassification",
    "M2dModel",
    "PasstMelFeatureExtractor",
    "SedHeadSettings",
    "AstConfig",
    "AstFeatureExtractor",
    "AstForAudioClassification",
    "AstForAudioFrameClassification",
    "AstModel",
    "BeatsTokenizerModel",
    "BeatsConfig",
    "BeatsFeatureExtractor",
    "BeatsForAudioClassification",
    "BeatsForAudioFrameClassification",
    "BeatsModel",
    "BeatsTokenizerConfig",
    "ByolAConfig",
    "ByolAFeatureExtractor",
    "ByolAForAudioClassification",
    "ByolAForAudioFrameClassification",
    "ByolAModel",
    "EatConfig",
    "EatFeatureExtractor",
    "EatForAudioClassification",
    "EatForAudioFrameClassification",
    "EatModel",
]
