"""The package's import direction (shared/DESIGN.md): cli -> pipelines / inference / training / conversion -> models
-> layers / feature_extraction -> audio. A module may import only the rooms below its own; nothing imports cli."""

from __future__ import annotations

import ast
from pathlib import Path

import audiozoo

ROOT = Path(audiozoo.__file__).parent
LOWEST = {"audio", "data", "families", "default_model", "runtime"}
# room -> the rooms it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    **{room: set() for room in LOWEST},
    "layers": {"audio"},
    "feature_extraction": {"runtime", "audio", "layers"},
    "models": {"audio", "feature_extraction", "layers"},
    "sed": {"audio"},
    "hub": {"data", "families"},
    "pipelines": {"runtime", "audio", "feature_extraction", "layers", "sed"},
    "inference": {"runtime", "audio", "data", "families", "feature_extraction", "layers", "models", "pipelines", "sed"},
    "hear": {"runtime", "audio", "data", "default_model", "families", "feature_extraction", "inference", "layers", "models",
             "pipelines"},
    "conversion": {"audio", "data", "families", "feature_extraction", "hub", "layers", "models"},
    "training": {"runtime", "audio", "data", "feature_extraction", "inference", "layers", "models", "pipelines", "sed"},
}


def _room(parts: list[str]) -> str:
    return parts[0] if parts else "__init__"


def imports_between_rooms() -> set[tuple[str, str, str]]:
    """(importing room, imported room, file) for every package import that crosses rooms, lazy ones included."""
    found = set()
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        package = list(relative.parts[:-1])
        source = _room(list(relative.with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                target = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
                target = target or [node.names[0].name]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("audiozoo."):
                target = node.module.split(".")[1:]
            elif isinstance(node, ast.Import):
                names = [alias.name.split(".")[1:] for alias in node.names if alias.name.startswith("audiozoo.")]
                if not names:
                    continue
                target = names[0]
            else:
                continue
            if _room(target) != source:
                found.add((source, _room(target), str(relative)))
    return found


def test_nothing_imports_the_command_line():
    offenders = sorted(f"{file}" for source, target, file in imports_between_rooms() if target == "cli")
    assert not offenders, f"the library imports cli: {offenders}"


def test_every_import_points_down():
    upward = sorted(
        f"{file}: {source} -> {target}"
        for source, target, file in imports_between_rooms()
        if source in ALLOWED and target not in ALLOWED[source]
    )
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_every_room_is_known():
    rooms = {path.name for path in ROOT.iterdir() if path.is_dir() and (path / "__init__.py").is_file()}
    top_modules = {path.stem for path in ROOT.glob("*.py")}
    assert rooms | top_modules <= set(ALLOWED) | {"__init__", "cli"}
