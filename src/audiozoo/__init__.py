"""audiozoo: published pretrained audio models as exact, fast Hugging Face transformers ports.

Importing the package registers every model family of `families.FAMILIES` with the transformers Auto classes and the
pipelines, and exports their classes (`audiozoo.BeatsModel`, `audiozoo.AstFeatureExtractor`, ...).
"""

from .default_model import default_classifier
from .families import FAMILIES, public_class_names, register_models
from .layers.sed_head import SedHeadSettings
from .pipelines import register_audio_classification_pipeline, register_sound_event_detection_pipeline

_CLASS_NAMES = public_class_names()
globals().update({name: family.load(name) for family in FAMILIES for name in family.class_names})

register_models()
register_audio_classification_pipeline()
register_sound_event_detection_pipeline()

__version__ = "0.1.0"

__all__ = ["FAMILIES", "SedHeadSettings", "default_classifier", *_CLASS_NAMES]
