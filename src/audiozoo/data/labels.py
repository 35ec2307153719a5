"""Label vocabularies shipped with the package (AudioSet ontology names for MIDs)."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources


LABEL_FILES = {
    "audioset": "audioset_527.csv",
    # the 447 AudioSet-strong training classes in PretrainedSED's order (display names only)
    "audioset_strong": "audioset_strong_447.csv",
    "esc50": "esc50_50.csv",
    "speechcommands": "speechcommands_35.csv",
}


@lru_cache(maxsize=None)
def _rows(file_name: str) -> tuple[dict[str, str], ...]:
    with resources.files("audiozoo.data").joinpath(file_name).open(encoding="utf-8") as handle:
        return tuple(csv.DictReader(handle))


def audioset_mid_to_name() -> dict[str, str]:
    """MID (e.g. "/m/09x0r") -> display name (e.g. "Speech") for the 527 AudioSet classes."""
    return {row["mid"]: row["display_name"] for row in _rows(LABEL_FILES["audioset"])}


def dataset_labels(dataset: str) -> tuple[list[str], list[str]]:
    """(display names, MIDs) in class-index order for a dataset of LABEL_FILES (MIDs are "" where not listed)."""
    if dataset not in LABEL_FILES:
        raise ValueError(f"no label list for {dataset!r}; known: {sorted(LABEL_FILES)}")
    rows = sorted(_rows(LABEL_FILES[dataset]), key=lambda row: int(row["index"]))
    return [row["display_name"] for row in rows], [row.get("mid") or "" for row in rows]


def names_for_mids(mids: list[str]) -> list[str]:
    """Display names for MIDs; a MID outside AudioSet is kept as it is (so no label is lost)."""
    table = audioset_mid_to_name()
    return [table.get(mid, mid) for mid in mids]
