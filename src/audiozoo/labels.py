"""Label vocabularies shipped with the package (AudioSet ontology names for MIDs)."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def audioset_mid_to_name() -> dict[str, str]:
    """MID (e.g. "/m/09x0r") -> display name (e.g. "Speech") for the 527 AudioSet classes."""
    with resources.files("audiozoo.data").joinpath("audioset_527.csv").open(encoding="utf-8") as handle:
        return {row["mid"]: row["display_name"] for row in csv.DictReader(handle)}


def names_for_mids(mids: list[str]) -> list[str]:
    """Display names for MIDs; a MID outside AudioSet is kept as it is (so no label is lost)."""
    table = audioset_mid_to_name()
    return [table.get(mid, mid) for mid in mids]
