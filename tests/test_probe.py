"""`audiozoo probe`: manifests are checked row by row; the linear probe learns separable classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from audiozoo.cli import main
from audiozoo.training.manifest import assign_splits, read_manifest


def write_tone_dataset(folder, per_class: int = 8) -> str:
    """Three classes of 1 s tones (low, mid, high) with noise; groups = recording 'sessions' of 2 clips."""
    rng = np.random.default_rng(0)
    lines = ["file,label,group"]
    for label, frequency in (("low", 200.0), ("mid", 1000.0), ("high", 4000.0)):
        for index in range(per_class):
            time = np.arange(16000) / 16000
            clip = 0.3 * np.sin(2 * np.pi * frequency * (1 + 0.05 * rng.standard_normal()) * time)
            clip += 0.02 * rng.standard_normal(16000)
            name = f"{label}_{index}.wav"
            soundfile.write(folder / name, clip.astype(np.float32), 16000)
            lines.append(f"{name},{label},{label}-session{index // 2}")
    manifest = folder / "tones.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return str(manifest)


def test_probe_learns_separable_classes(converted_dir, tmp_path, capsys):
    manifest = write_tone_dataset(tmp_path)
    output = tmp_path / "results.json"
    model = str(converted_dir("byola_v1_d512"))
    assert main(["probe", "--model", model, "--data", manifest, "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert result["test_accuracy"] >= 0.8 > result["chance_accuracy"] + 0.3
    assert sum(result["sizes"].values()) == 24 and result["labels"] == ["high", "low", "mid"]
    assert "test accuracy" in capsys.readouterr().out


def test_grouped_split_keeps_groups_together(tmp_path):
    rows = read_manifest(write_tone_dataset(tmp_path))
    splits = assign_splits(rows)
    by_group: dict[str, set[str]] = {}
    for row, split in zip(rows, splits, strict=True):
        by_group.setdefault(row.group, set()).add(split)
    assert all(len(assigned) == 1 for assigned in by_group.values())
    assert {"train", "valid", "test"} <= set(splits)
    assert assign_splits(rows) == splits  # deterministic


def test_bad_manifests_name_the_row(tmp_path):
    write_tone_dataset(tmp_path)
    missing = tmp_path / "missing.csv"
    missing.write_text("file,label\nlow_0.wav,low\nnot_there.wav,mid\n")
    with pytest.raises(FileNotFoundError, match=r"missing.csv, line 3: audio file not found: .*not_there.wav"):
        read_manifest(missing)
    empty_label = tmp_path / "empty.tsv"
    empty_label.write_text("path\tlabel\nlow_0.wav\t\n")
    with pytest.raises(ValueError, match="line 2: empty label"):
        read_manifest(empty_label)
    no_columns = tmp_path / "cols.csv"
    no_columns.write_text("name,class\nlow_0.wav,low\n")
    with pytest.raises(ValueError, match="expected a file column"):
        read_manifest(no_columns)
    bad_split = tmp_path / "split.csv"
    bad_split.write_text("file,label,split\nlow_0.wav,low,dev\n")
    with pytest.raises(ValueError, match="line 2: split must be train, valid or test, got 'dev'"):
        read_manifest(bad_split)
