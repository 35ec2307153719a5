"""Labelled audio manifests (CSV or TSV): read, check every row before any work starts, split."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

PATH_COLUMNS = ("file", "path", "filename", "audio")


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    label: str
    split: str | None
    group: str | None
    line: int


def read_manifest(manifest: str | Path) -> list[ManifestRow]:
    """Rows of a CSV/TSV with a file column (file, path, filename or audio; relative to the manifest's folder),
    `label`, and optionally `split` (train/valid/test) and `group`. A missing file, an empty label or an unknown
    split is an error that names the line."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest not found: {manifest}")
    text = manifest.read_text(encoding="utf-8")
    delimiter = "\t" if manifest.suffix.lower() == ".tsv" or ("\t" in text.splitlines()[0] if text else False) else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = reader.fieldnames or []
    path_column = next((column for column in PATH_COLUMNS if column in columns), None)
    if path_column is None or "label" not in columns:
        raise ValueError(f"{manifest}: expected a file column ({'/'.join(PATH_COLUMNS)}) and 'label', found {columns}")
    rows = []
    for line, record in enumerate(reader, start=2):
        path = Path(record[path_column])
        path = path if path.is_absolute() else manifest.parent / path
        if not path.is_file():
            raise FileNotFoundError(f"{manifest}, line {line}: audio file not found: {path}")
        label = (record.get("label") or "").strip()
        if not label:
            raise ValueError(f"{manifest}, line {line}: empty label")
        split = (record.get("split") or "").strip() or None
        if split not in (None, "train", "valid", "test"):
            raise ValueError(f"{manifest}, line {line}: split must be train, valid or test, got {split!r}")
        rows.append(ManifestRow(path, label, split, (record.get("group") or "").strip() or None, line))
    if not rows:
        raise ValueError(f"{manifest} has no rows")
    return rows


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
