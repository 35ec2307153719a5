"""Labelled audio manifests (CSV or TSV): read (`audiozoo.data.sources.read_manifest`, checking every row before any
work starts) and split."""

from __future__ import annotations

import random

# the readers live in audiozoo.data.sources (inference reads the same sources); importable from here as before
from ..data.sources import PATH_COLUMNS, ManifestRow, read_manifest


def assign_splits(rows: list[ManifestRow], seed: int = 42, test_fraction: float = 0.2,
                  valid_fraction: float = 0.1) -> list[str]:
    """The `split` column if every row has one. Otherwise whole groups (so test groups are unseen) or single rows
    are drawn with a fixed seed into test, valid and train; per label when each unit holds one label (so every
    split sees every class), across labels when groups mix labels (a drum kit holds every drum)."""
    if all(row.split for row in rows):
        return [row.split for row in rows]
    keys = [row.group for row in rows] if all(row.group for row in rows) else list(range(len(rows)))
    labels_of: dict[object, set[str]] = {}
    for key, row in zip(keys, rows, strict=True):
        labels_of.setdefault(key, set()).add(row.label)
    pure = all(len(labels) == 1 for labels in labels_of.values())
    strata: dict[str, list] = {}
    for key in sorted(labels_of, key=str):
        strata.setdefault(next(iter(labels_of[key])) if pure else "", []).append(key)
    rng = random.Random(seed)
    split_of = {}
    for units in strata.values():
        rng.shuffle(units)
        test_count = max(1, round(len(units) * test_fraction)) if len(units) >= 2 else 0
        valid_count = max(1, round(len(units) * valid_fraction)) if len(units) >= 3 else 0
        for position, unit in enumerate(units):
            split_of[unit] = "test" if position < test_count else "valid" if position < test_count + valid_count else "train"
    return [split_of[key] for key in keys]


__all__ = ["PATH_COLUMNS", "ManifestRow", "assign_splits", "read_manifest"]
