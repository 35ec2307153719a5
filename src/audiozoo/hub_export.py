"""Make a converted folder loadable without audiozoo: `from_pretrained(..., trust_remote_code=True)`.

transformers' remote code accepts only flat, sibling-imported modules in the checkpoint folder. The family's
files and the shared modules they use are copied flat, their package-relative imports rewritten to sibling
imports, and `auto_map` entries written for every Auto class. With audiozoo imported, its registered classes
take precedence over `auto_map`, so one folder serves both audiences.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent

# what the filterbank ViTs (AST, EAT) share: blocks, heads, the fbank front end, the token classifiers
FBANK_VIT_FILES = [
    "attention.py",
    "heads.py",
    "vit.py",
    "token_classifiers.py",
    "features.py",
    "masking.py",
    "fbank_feature_extractor.py",
    "audio/fbank.py",
]

# family -> files (relative to the package) that its remote code needs
REMOTE_CODE_FILES: dict[str, list[str]] = {
    "beats": [
        "models/beats/configuration_beats.py",
        "models/beats/modeling_beats.py",
        "models/beats/feature_extraction_beats.py",
        "attention.py",
        "heads.py",
        "masking.py",
        "features.py",
        "fbank_feature_extractor.py",
        "audio/fbank.py",
    ],
    **{
        family: [
            f"models/{family}/configuration_{family}.py",
            f"models/{family}/modeling_{family}.py",
            f"models/{family}/feature_extraction_{family}.py",
            *FBANK_VIT_FILES,
        ]
        for family in ("ast", "eat")
    },
    "byol_a": [
        "models/byol_a/configuration_byol_a.py",
        "models/byol_a/modeling_byol_a.py",
        "models/byol_a/feature_extraction_byol_a.py",
        "heads.py",
        "features.py",
        "masking.py",
        "audio/melspec.py",
    ],
}

SED_SHARED_FILES = [
    "sed_model.py",
    "sed_head.py",
    "sed_feature_extraction.py",
    "heads.py",
    "vit.py",
    "attention.py",
    "features.py",
]
# the PretrainedSED frame models: (family, model_type, file stem, class prefix)
SED_FAMILIES = [
    ("atst_frame", "audiozoo-atst-frame", "atst_frame", "AtstFrame"),
    ("fpasst", "audiozoo-fpasst", "fpasst", "Fpasst"),
    ("asit", "audiozoo-asit", "asit", "Asit"),
    ("m2d", "audiozoo-m2d", "m2d", "M2d"),
    ("frame_mn", "audiozoo-frame-mn", "frame_mn", "FrameMn"),
]
for _family, _model_type, _stem, _prefix in SED_FAMILIES:
    REMOTE_CODE_FILES[_family] = [
        f"models/{_family}/configuration_{_stem}.py",
        f"models/{_family}/modeling_{_stem}.py",
        *SED_SHARED_FILES,
    ]
# each family's front end and what it is built on (frame-MobileNet uses fPaSST's front end with another window)
REMOTE_CODE_FILES["atst_frame"] += ["models/atst_frame/feature_extraction_atst_frame.py", "audio/melspec.py"]
REMOTE_CODE_FILES["fpasst"] += ["models/fpasst/feature_extraction_fpasst.py", "audio/passt_mel.py", "audio/melspec.py",
                                "audio/fbank.py"]
REMOTE_CODE_FILES["frame_mn"] += ["models/frame_mn/mobilenet.py", "models/fpasst/feature_extraction_fpasst.py",
                                  "audio/passt_mel.py", "audio/melspec.py", "audio/fbank.py"]
REMOTE_CODE_FILES["asit"] += ["models/asit/feature_extraction_asit.py", "audio/fbank.py"]
REMOTE_CODE_FILES["m2d"] += ["models/m2d/feature_extraction_m2d.py", "audio/melspec.py"]
# every family's frame classifier can carry the PretrainedSED head
for _files in list(REMOTE_CODE_FILES.values()):
    if "sed_head.py" not in _files:
        _files.append("sed_head.py")

# model_type -> {Auto class: module.Class}
AUTO_MAPS: dict[str, dict[str, str]] = {
    "audiozoo-beats": {
        "AutoConfig": "configuration_beats.BeatsConfig",
        "AutoModel": "modeling_beats.BeatsModel",
        "AutoModelForAudioClassification": "modeling_beats.BeatsForAudioClassification",
        "AutoModelForAudioFrameClassification": "modeling_beats.BeatsForAudioFrameClassification",
    },
    "audiozoo-ast": {
        "AutoConfig": "configuration_ast.AstConfig",
        "AutoModel": "modeling_ast.AstModel",
        "AutoModelForAudioClassification": "modeling_ast.AstForAudioClassification",
        "AutoModelForAudioFrameClassification": "modeling_ast.AstForAudioFrameClassification",
    },
    "audiozoo-eat": {
        "AutoConfig": "configuration_eat.EatConfig",
        "AutoModel": "modeling_eat.EatModel",
        "AutoModelForAudioClassification": "modeling_eat.EatForAudioClassification",
        "AutoModelForAudioFrameClassification": "modeling_eat.EatForAudioFrameClassification",
    },
    "audiozoo-byol-a": {
        "AutoConfig": "configuration_byol_a.ByolAConfig",
        "AutoModel": "modeling_byol_a.ByolAModel",
        "AutoModelForAudioClassification": "modeling_byol_a.ByolAForAudioClassification",
        "AutoModelForAudioFrameClassification": "modeling_byol_a.ByolAForAudioFrameClassification",
    },
    "audiozoo-beats-tokenizer": {
        "AutoConfig": "configuration_beats.BeatsTokenizerConfig",
        "AutoModel": "modeling_beats.BeatsTokenizerModel",
    },
}
for _family, _model_type, _stem, _prefix in SED_FAMILIES:
    AUTO_MAPS[_model_type] = {
        "AutoConfig": f"configuration_{_stem}.{_prefix}Config",
        "AutoModel": f"modeling_{_stem}.{_prefix}Model",
        "AutoModelForAudioFrameClassification": f"modeling_{_stem}.{_prefix}ForAudioFrameClassification",
    }
FEATURE_EXTRACTOR_MAPS = {
    "AtstFrameFeatureExtractor": "feature_extraction_atst_frame.AtstFrameFeatureExtractor",
    "PasstMelFeatureExtractor": "feature_extraction_fpasst.PasstMelFeatureExtractor",
    "AsitFeatureExtractor": "feature_extraction_asit.AsitFeatureExtractor",
    "M2dFeatureExtractor": "feature_extraction_m2d.M2dFeatureExtractor",
    "BeatsFeatureExtractor": "feature_extraction_beats.BeatsFeatureExtractor",
    "AstFeatureExtractor": "feature_extraction_ast.AstFeatureExtractor",
    "EatFeatureExtractor": "feature_extraction_eat.EatFeatureExtractor",
    "ByolAFeatureExtractor": "feature_extraction_byol_a.ByolAFeatureExtractor",
}

_RELATIVE_IMPORT = re.compile(r"^from (\.+)([\w.]*) import", re.MULTILINE)


def flatten_imports(source: str) -> str:
    """`from ...audio.fbank import X` -> `from .fbank import X` (the last module name, as a sibling)."""

    def sibling(match: re.Match) -> str:
        module = match.group(2).split(".")[-1]
        if not module:
            raise ValueError(f"cannot flatten a package import: {match.group(0)!r}")
        return f"from .{module} import"

    return _RELATIVE_IMPORT.sub(sibling, source)


def write_remote_code(output_dir: str | Path, family: str) -> list[Path]:
    """Copy the family's code flat into `output_dir` and add `auto_map` to its config and preprocessor config."""
    output_dir = Path(output_dir)
    if family not in REMOTE_CODE_FILES:
        raise ValueError(f"no remote code is defined for {family!r}; known: {sorted(REMOTE_CODE_FILES)}")
    written = []
    names = [Path(relative).name for relative in REMOTE_CODE_FILES[family]]
    if len(set(names)) != len(names):
        raise ValueError(f"flat file names collide: {names}")
    for relative in REMOTE_CODE_FILES[family]:
        target = output_dir / Path(relative).name
        target.write_text(flatten_imports((PACKAGE_ROOT / relative).read_text(encoding="utf-8")), encoding="utf-8")
        written.append(target)

    config_path = output_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["auto_map"] = AUTO_MAPS[config["model_type"]]
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    preprocessor_path = output_dir / "preprocessor_config.json"
    if preprocessor_path.is_file():
        preprocessor = json.loads(preprocessor_path.read_text(encoding="utf-8"))
        extractor = preprocessor["feature_extractor_type"]
        preprocessor["auto_map"] = {"AutoFeatureExtractor": FEATURE_EXTRACTOR_MAPS[extractor]}
        preprocessor_path.write_text(json.dumps(preprocessor, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return written

