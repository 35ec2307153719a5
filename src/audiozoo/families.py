"""The one table of model families: everything else that lists families is derived from it.

Registration with the transformers Auto classes, the package's `__all__`, the `audiozoo convert` sub-commands and the
remote code written beside converted weights (`auto_map`, which files) all read `FAMILIES`. Adding a family means
adding its `models/<package>/` sub-package, a row here and, if it converts from an original file, a conversion module.

The table holds names, not classes, so reading it (the command line does) imports no torch; `load` imports a class.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

# Auto class -> (kind of module, class-name suffix) of the classes a family may have
AUTO_CLASSES = {
    "AutoConfig": ("configuration", "Config"),
    "AutoModel": ("modeling", "Model"),
    "AutoModelForAudioClassification": ("modeling", "ForAudioClassification"),
    "AutoModelForAudioFrameClassification": ("modeling", "ForAudioFrameClassification"),
}


@dataclass(frozen=True)
class ModelFamily:
    """One `model_type` of the package.

    model_type: `config.model_type` (prefixed `audiozoo-`).
    package: the sub-package under `audiozoo.models` and the stem of its files (`modeling_<package>.py`, ...).
    prefix: the class-name prefix (`<prefix>Config`, `<prefix>Model`, `<prefix>ForAudioClassification`, ...).
    clip_classifier, frame_classifier: whether `<prefix>ForAudioClassification` / `...ForAudioFrameClassification` exist.
    feature_extractor: its class name, in `models/<feature_extractor_package>/feature_extraction_<that>.py`
        (frame-MobileNet uses fPaSST's front end).
    conversion: the `audiozoo convert` sub-command (= module `audiozoo.conversion.<conversion>`) for its original files.
    """

    model_type: str
    package: str
    prefix: str
    clip_classifier: bool
    frame_classifier: bool
    feature_extractor: str
    conversion: str
    feature_extractor_package: str | None = None

    def module_name(self, kind: str, package: str | None = None) -> str:
        """`kind` (configuration, modeling, feature_extraction) -> its module's file stem."""
        return f"{kind}_{package or self.package}"

    @property
    def auto_classes(self) -> dict[str, tuple[str, str]]:
        """Auto class name -> (module file stem, class name) of every Auto class this family registers with."""
        present = {"AutoModelForAudioClassification": self.clip_classifier,
                   "AutoModelForAudioFrameClassification": self.frame_classifier}
        return {
            auto: (self.module_name(kind), self.prefix + suffix)
            for auto, (kind, suffix) in AUTO_CLASSES.items()
            if present.get(auto, True)
        }

    @property
    def feature_extractor_module(self) -> str:
        return self.module_name("feature_extraction", self.feature_extractor_package)

    @property
    def class_names(self) -> list[str]:
        """Every public class of the family: its Auto classes and its feature extractor."""
        return [name for _, name in self.auto_classes.values()] + [self.feature_extractor]

    def load(self, class_name: str) -> type:
        """Import one of the family's classes (or its feature extractor) from its sub-package."""
        package = self.feature_extractor_package if class_name == self.feature_extractor else None
        module = importlib.import_module(f"audiozoo.models.{package or self.package}")
        return getattr(module, class_name)


FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily("audiozoo-beats", "beats", "Beats", True, True, "BeatsFeatureExtractor", "beats"),
    ModelFamily("audiozoo-beats-tokenizer", "beats", "BeatsTokenizer", False, False, "BeatsFeatureExtractor", "beats"),
    ModelFamily("audiozoo-ast", "ast", "Ast", True, True, "AstFeatureExtractor", "ast"),
    ModelFamily("audiozoo-eat", "eat", "Eat", True, True, "EatFeatureExtractor", "eat"),
    ModelFamily("audiozoo-byol-a", "byol_a", "ByolA", True, True, "ByolAFeatureExtractor", "byol_a"),
    # the PretrainedSED frame models
    ModelFamily("audiozoo-atst-frame", "atst_frame", "AtstFrame", True, True, "AtstFrameFeatureExtractor",
                "pretrained_sed"),
    ModelFamily("audiozoo-fpasst", "fpasst", "Fpasst", True, True, "PasstMelFeatureExtractor", "pretrained_sed"),
    ModelFamily("audiozoo-asit", "asit", "Asit", True, True, "AsitFeatureExtractor", "pretrained_sed"),
    ModelFamily("audiozoo-m2d", "m2d", "M2d", True, True, "M2dFeatureExtractor", "pretrained_sed"),
    ModelFamily("audiozoo-frame-mn", "frame_mn", "FrameMn", True, True, "PasstMelFeatureExtractor", "pretrained_sed",
                feature_extractor_package="fpasst"),
)

FAMILY_BY_MODEL_TYPE: dict[str, ModelFamily] = {family.model_type: family for family in FAMILIES}

CONVERSIONS: tuple[str, ...] = tuple(dict.fromkeys(family.conversion for family in FAMILIES))
"""The `audiozoo convert` sub-commands, in table order."""


def family_of(model_type: str) -> ModelFamily:
    """The table row of a `config.model_type`; a clear error for a model type of another package."""
    if model_type not in FAMILY_BY_MODEL_TYPE:
        raise ValueError(f"{model_type!r} is not an audiozoo model type; known: {sorted(FAMILY_BY_MODEL_TYPE)}")
    return FAMILY_BY_MODEL_TYPE[model_type]


def public_class_names() -> list[str]:
    """Every model, config and feature-extractor class the package exports, each once, in table order."""
    return list(dict.fromkeys(name for family in FAMILIES for name in family.class_names))


def register_models() -> None:
    """Make AutoConfig / AutoModel* / AutoFeatureExtractor resolve our `model_type`s to our classes."""
    import transformers

    for family in FAMILIES:
        config = family.load(family.prefix + "Config")
        transformers.AutoConfig.register(family.model_type, config, exist_ok=True)
        for auto, (_, class_name) in family.auto_classes.items():
            if auto != "AutoConfig":
                getattr(transformers, auto).register(config, family.load(class_name), exist_ok=True)
        transformers.AutoFeatureExtractor.register(config, family.load(family.feature_extractor), exist_ok=True)


__all__ = ["CONVERSIONS", "FAMILIES", "ModelFamily", "family_of", "public_class_names", "register_models"]
