"""Registration of every audiozoo model with the transformers Auto classes (run once, on `import audiozoo`)."""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioFrameClassification,
)

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

# every model type: (config, encoder, clip classifier, frame classifier, feature extractor); None = no such class
MODELS = [
    (BeatsConfig, BeatsModel, BeatsForAudioClassification, BeatsForAudioFrameClassification, BeatsFeatureExtractor),
    (BeatsTokenizerConfig, BeatsTokenizerModel, None, None, BeatsFeatureExtractor),
    (AstConfig, AstModel, AstForAudioClassification, AstForAudioFrameClassification, AstFeatureExtractor),
    (EatConfig, EatModel, EatForAudioClassification, EatForAudioFrameClassification, EatFeatureExtractor),
    (ByolAConfig, ByolAModel, ByolAForAudioClassification, ByolAForAudioFrameClassification, ByolAFeatureExtractor),
    # the PretrainedSED frame models
    (AtstFrameConfig, AtstFrameModel, None, AtstFrameForAudioFrameClassification, AtstFrameFeatureExtractor),
    (FpasstConfig, FpasstModel, None, FpasstForAudioFrameClassification, PasstMelFeatureExtractor),
    (AsitConfig, AsitModel, None, AsitForAudioFrameClassification, AsitFeatureExtractor),
    (M2dConfig, M2dModel, None, M2dForAudioFrameClassification, M2dFeatureExtractor),
    (FrameMnConfig, FrameMnModel, None, FrameMnForAudioFrameClassification, PasstMelFeatureExtractor),
]


def register_models() -> None:
    """Make AutoConfig / AutoModel* / AutoFeatureExtractor resolve our `model_type`s to our classes."""
    for config, encoder, clip_classifier, frame_classifier, feature_extractor in MODELS:
        AutoConfig.register(config.model_type, config, exist_ok=True)
        AutoModel.register(config, encoder, exist_ok=True)
        if clip_classifier is not None:
            AutoModelForAudioClassification.register(config, clip_classifier, exist_ok=True)
        if frame_classifier is not None:
            AutoModelForAudioFrameClassification.register(config, frame_classifier, exist_ok=True)
        AutoFeatureExtractor.register(config, feature_extractor, exist_ok=True)
