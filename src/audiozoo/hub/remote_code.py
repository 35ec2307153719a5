"""Make a model folder loadable without audiozoo: `from_pretrained(..., trust_remote_code=True)`.

transformers' remote code accepts only flat, sibling-imported modules in the checkpoint folder. A family's
configuration, modeling and feature-extraction modules and every package module they import (found by following
their relative imports, so no list is kept by hand) are copied flat, their package-relative imports rewritten to
sibling imports, and `auto_map` entries written for every Auto class of the family (from `families.FAMILIES`).
With audiozoo imported, its registered classes take precedence over `auto_map`, so one folder serves both audiences.

Every model and feature extractor of the package writes this code when saved (`write_saved_object_code`, called by
layers/remote_code_saving.py), so a fine-tuned or re-saved folder is as shareable as a converted one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..families import FAMILY_BY_MODEL_TYPE, ModelFamily, family_of

PACKAGE_ROOT = Path(__file__).resolve().parents[1]

_RELATIVE_IMPORT = re.compile(r"^(\s*)from (\.+)([\w.]*) import", re.MULTILINE)


def _imported_files(path: Path) -> list[Path]:
    """Package files that `path` imports relatively (at any indentation: lazy imports count too)."""
    files = []
    for match in _RELATIVE_IMPORT.finditer(path.read_text(encoding="utf-8")):
        base = path.parent
        for _ in range(len(match.group(2)) - 1):
            base = base.parent
        module = match.group(3)
        if not module:
            raise ValueError(f"{path.relative_to(PACKAGE_ROOT)}: remote code cannot import a package: {match.group(0)!r}")
        target = base.joinpath(*module.split(".")).with_suffix(".py")
        if not target.is_file():
            raise ValueError(f"{path.relative_to(PACKAGE_ROOT)} imports {module}, which is no module file: remote "
                             "code needs plain module imports")
        files.append(target)
    return files


def _with_imports(roots: list[Path]) -> list[Path]:
    """`roots` and every package module they import, each once, in a stable order; flat names must not collide."""
    found: dict[Path, None] = {}
    pending = list(roots)
    while pending:
        path = pending.pop(0)
        if path not in found:
            found[path] = None
            pending.extend(_imported_files(path))
    names = [path.name for path in found]
    if len(set(names)) != len(names):
        raise ValueError(f"flat file names of the remote code of {[root.name for root in roots]} collide: "
                         f"{sorted(names)}")
    return list(found)


def remote_code_files(family: ModelFamily) -> list[Path]:
    """The family's own modules and everything they import from the package, each once, in a stable order."""
    models = PACKAGE_ROOT / "models"
    return _with_imports([
        models / family.package / f"{family.module_name('configuration')}.py",
        models / family.package / f"{family.module_name('modeling')}.py",
        models / (family.feature_extractor_package or family.package) / f"{family.feature_extractor_module}.py",
    ])


def remote_code_file_names(family: ModelFamily) -> list[str]:
    """The names of the files `write_remote_code` writes for `family` (what a Hub repo of it needs besides weights
    and JSON)."""
    return [path.name for path in remote_code_files(family)]


def flatten_imports(source: str) -> str:
    """`from ...audio.fbank import X` -> `from .fbank import X` (the last module name, as a sibling)."""

    def sibling(match: re.Match) -> str:
        module = match.group(3).split(".")[-1]
        if not module:
            raise ValueError(f"cannot flatten a package import: {match.group(0)!r}")
        return f"{match.group(1)}from .{module} import"

    return _RELATIVE_IMPORT.sub(sibling, source)


def auto_map(family: ModelFamily) -> dict[str, str]:
    """config.json's `auto_map`: Auto class -> `module.Class` of the flat copies."""
    return {auto: f"{module}.{name}" for auto, (module, name) in family.auto_classes.items()}


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _add_to_json(path: Path, key: str, value) -> None:
    content = _read_json(path)
    content[key] = value
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _copy_flat(sources: list[Path], output_dir: Path) -> list[Path]:
    written = []
    for source in sources:
        target = output_dir / source.name
        target.write_text(flatten_imports(source.read_text(encoding="utf-8")), encoding="utf-8")
        written.append(target)
    return written


def write_remote_code(output_dir: str | Path) -> list[Path]:
    """Copy the code of the folder's family (read from its config.json) flat into `output_dir` and add `auto_map`
    to its config and preprocessor config. Returns the files written."""
    output_dir = Path(output_dir)
    config_path = output_dir / "config.json"
    family = family_of(_read_json(config_path)["model_type"])
    written = _copy_flat(remote_code_files(family), output_dir)
    _add_to_json(config_path, "auto_map", auto_map(family))
    preprocessor_path = output_dir / "preprocessor_config.json"
    if preprocessor_path.is_file():
        extractor = _read_json(preprocessor_path)["feature_extractor_type"]
        _add_to_json(preprocessor_path, "auto_map",
                     {"AutoFeatureExtractor": f"{family.feature_extractor_module}.{extractor}"})
    return written


def has_remote_code(output_dir: str | Path) -> bool:
    """Whether the folder holds all of its family's code files and the `auto_map`s `write_remote_code` writes."""
    output_dir = Path(output_dir)
    family = family_of(_read_json(output_dir / "config.json")["model_type"])
    if _read_json(output_dir / "config.json").get("auto_map") != auto_map(family):
        return False
    preprocessor_path = output_dir / "preprocessor_config.json"
    if preprocessor_path.is_file() and "auto_map" not in _read_json(preprocessor_path):
        return False
    return all((output_dir / name).is_file() for name in remote_code_file_names(family))


def write_saved_object_code(output_dir: str | Path, saved_class: type) -> list[Path]:
    """The remote code a package class's `save_pretrained` leaves (layers/remote_code_saving.py): with an audiozoo
    config.json in the folder, its family's code and `auto_map`s (`write_remote_code`); in a folder that holds only
    a feature extractor, that extractor's module (and what it imports) with the preprocessor config's `auto_map`,
    completed by `write_remote_code` when the model is saved beside it."""
    output_dir = Path(output_dir)
    config_path = output_dir / "config.json"
    if config_path.is_file() and _read_json(config_path).get("model_type") in FAMILY_BY_MODEL_TYPE:
        return write_remote_code(output_dir)
    preprocessor_path = output_dir / "preprocessor_config.json"
    if not preprocessor_path.is_file() or _read_json(preprocessor_path).get("feature_extractor_type") != \
            saved_class.__name__:
        return []
    module = PACKAGE_ROOT.joinpath(*saved_class.__module__.split(".")[1:]).with_suffix(".py")
    written = _copy_flat(_with_imports([module]), output_dir)
    _add_to_json(preprocessor_path, "auto_map", {"AutoFeatureExtractor": f"{module.stem}.{saved_class.__name__}"})
    return written
