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

# the PretrainedSED frame models: (config, encoder, frame classifier, feature extractor)
SED_MODELS = [
    (AtstFrameConfig, AtstFrameModel, AtstFrameForAudioFrameClassification, AtstFrameFeatureExtractor),
    (FpasstConfig, FpasstModel, FpasstForAudioFrameClassification, PasstMelFeatureExtractor),
    (AsitConfig, AsitModel, AsitForAudioFrameClassification, AsitFeatureExtractor),
    (M2dConfig, M2dModel, M2dForAudioFrameClassification, M2dFeatureExtractor),
    (FrameMnConfig, FrameMnModel, FrameMnForAudioFrameClassification, PasstMelFeatureExtractor),
]


def register_models() -> None:
    """Make AutoConfig / AutoModel* / AutoFeatureExtractor resolve our `model_type`s to our classes."""
    AutoConfig.register(BeatsConfig.model_type, BeatsConfig, exist_ok=True)
    AutoModel.register(BeatsConfig, BeatsModel, exist_ok=True)
    AutoModelForAudioClassification.register(BeatsConfig, BeatsForAudioClassification, exist_ok=True)
    AutoModelForAudioFrameClassification.register(BeatsConfig, BeatsForAudioFrameClassification, exist_ok=True)
    AutoFeatureExtractor.register(BeatsConfig, BeatsFeatureExtractor, exist_ok=True)

    AutoConfig.register(BeatsTokenizerConfig.model_type, BeatsTokenizerConfig, exist_ok=True)
    AutoModel.register(BeatsTokenizerConfig, BeatsTokenizerModel, exist_ok=True)
    AutoFeatureExtractor.register(BeatsTokenizerConfig, BeatsFeatureExtractor, exist_ok=True)

    AutoConfig.register(AstConfig.model_type, AstConfig, exist_ok=True)
    AutoModel.register(AstConfig, AstModel, exist_ok=True)
    AutoModelForAudioClassification.register(AstConfig, AstForAudioClassification, exist_ok=True)
    AutoModelForAudioFrameClassification.register(AstConfig, AstForAudioFrameClassification, exist_ok=True)
    AutoFeatureExtractor.register(AstConfig, AstFeatureExtractor, exist_ok=True)

    AutoConfig.register(EatConfig.model_type, EatConfig, exist_ok=True)
    AutoModel.register(EatConfig, EatModel, exist_ok=True)
    AutoModelForAudioClassification.register(EatConfig, EatForAudioClassification, exist_ok=True)
    AutoModelForAudioFrameClassification.register(EatConfig, EatForAudioFrameClassification, exist_ok=True)
    AutoFeatureExtractor.register(EatConfig, EatFeatureExtractor, exist_ok=True)

    AutoConfig.register(ByolAConfig.model_type, ByolAConfig, exist_ok=True)
    AutoModel.register(ByolAConfig, ByolAModel, exist_ok=True)
    AutoModelForAudioClassification.register(ByolAConfig, ByolAForAudioClassification, exist_ok=True)
    AutoModelForAudioFrameClassification.register(ByolAConfig, ByolAForAudioFrameClassification, exist_ok=True)
    AutoFeatureExtractor.register(ByolAConfig, ByolAFeatureExtractor, exist_ok=True)

    for config, encoder, frame_classifier, feature_extractor in SED_MODELS:
        AutoConfig.register(config.model_type, config, exist_ok=True)
        AutoModel.register(config, encoder, exist_ok=True)
        AutoModelForAudioFrameClassification.register(config, frame_classifier, exist_ok=True)
        AutoFeatureExtractor.register(config, feature_extractor, exist_ok=True)
