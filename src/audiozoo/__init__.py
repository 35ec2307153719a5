"""audiozoo: published pretrained audio models as exact, fast Hugging Face transformers ports.

Importing the package registers every model family of `families.FAMILIES` with the transformers Auto classes and the
pipelines, and exports their classes (`audiozoo.BeatsModel`, `audiozoo.AstFeatureExtractor`, ...). Only the `audiozoo`
command defers this (see audiozoo_cli.py) until it has parsed its arguments, then calls `load()`.
"""

from __future__ import annotations

import os as _os

from .families import FAMILIES, public_class_names

__version__ = "0.1.0"

_CLASS_NAMES = public_class_names()
__all__ = ["FAMILIES", "SedHeadSettings", "default_classifier", "load", *_CLASS_NAMES]
_loaded = False


def load() -> None:
    """Import every family's classes into the package and register them with the Auto classes and the pipelines
    (done on `import audiozoo`; idempotent)."""
    global _loaded
    if _loaded:
        return
    from .default_model import default_classifier
    from .families import register_models
    from .layers.sed_head import SedHeadSettings
    from .pipelines import register_audio_classification_pipeline, register_sound_event_detection_pipeline

    globals().update({name: family.load(name) for family in FAMILIES for name in family.class_names})
    globals().update(SedHeadSettings=SedHeadSettings, default_classifier=default_classifier)
    register_models()
    register_audio_classification_pipeline()
    register_sound_event_detection_pipeline()
    _loaded = True


def __getattr__(name: str):
    """With registration deferred (the command line), the first use of a public name loads everything."""
    if name in __all__:
        load()
        return globals()[name]
    raise AttributeError(f"module 'audiozoo' has no attribute {name!r}")


if _os.environ.pop("AUDIOZOO_DEFER_REGISTRATION", None) != "1":
    load()
