"""Every module of the package imports in a clean install: an import of an undeclared distribution fails here."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import audiozoo

MODULES = sorted(info.name for info in pkgutil.walk_packages(audiozoo.__path__, prefix="audiozoo."))


def test_the_walk_finds_the_package():
    assert len(MODULES) > 50
    assert {"audiozoo.cli", "audiozoo.training.distill", "audiozoo.sed.evaluation"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)


def _imported_top_level_names() -> dict[str, str]:
    """Top-level names of every import statement in the package's source, functions included (lazy imports too),
    each with the first module that imports it."""
    import ast
    import sys
    from pathlib import Path

    names: dict[str, str] = {}
    root = Path(audiozoo.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found = [node.module]
            else:
                continue
            for name in found:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "audiozoo":
                    names.setdefault(top, str(path.relative_to(root)))
    return names


def _normalise(distribution: str) -> str:
    return distribution.lower().replace("_", "-")


def test_every_imported_distribution_is_declared():
    """setup.py declares (in install_requires or an extra) the distribution of every name the source imports, lazy
    imports included, so a clean install has it; a package installed by hand on the CI machine proves nothing."""
    import re
    from importlib.metadata import packages_distributions, requires

    declared = {_normalise(re.split(r"[\s;<>=!~\[]", requirement, maxsplit=1)[0]) for requirement in requires("audiozoo")}
    providers = packages_distributions()
    undeclared = {}
    for name, where in _imported_top_level_names().items():
        distributions = {_normalise(d) for d in providers.get(name, [])}
        if not distributions & declared:
            undeclared[name] = (where, sorted(distributions) or "not installed")
    assert not undeclared, f"imported but not declared in setup.py: {undeclared}"
