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
