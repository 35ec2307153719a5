"""The optional extras (`sed`, `plot`) fail with a message that names them, and training runs that need the SED
metrics fail before they train; the README renders (closed fences) and its snippets import what they use; the
drums example scripts take any labelled data a user has."""

from __future__ import annotations

import ast
import builtins
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from conftest import REPO

README = REPO / "README.md"
SED_INSTALL = re.escape('pip install "audiozoo[sed]"')
PLOT_INSTALL = re.escape('pip install "audiozoo[plot]"')
FIRST_COMMAND = ('pip install torch==2.13.0 && pip install -e ".[test]" && '
                 "audiozoo classify examples/audio/drum_kick_rumpf.wav --top-k 3")


# --- extras ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", ["sed_scores_eval", "pandas"])
def test_sed_metrics_without_the_extra_name_it(monkeypatch, module):
    from audiozoo.sed import event_based_f1, psds1, require_sed_metrics, segment_based_f1

    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    scores = {"a.wav": np.zeros((10, 2))}
    scores["a.wav"][2:5, 0] = 0.9
    truth = {"a.wav": [(0.2, 0.5, "dog")]}
    calls = (
        require_sed_metrics,
        lambda: psds1(scores, 0.1, ["dog", "cat"], truth, {"a.wav": 1.0}),
        lambda: event_based_f1(scores, 0.1, ["dog", "cat"], truth),
        lambda: segment_based_f1(scores, 0.1, ["dog", "cat"], truth, {"a.wav": 1.0}),
    )
    for call in calls:
        with pytest.raises(ImportError, match=SED_INSTALL) as caught:
            call()
        assert module in str(caught.value)


def test_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    from audiozoo.sed.plot import plot_events

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=PLOT_INSTALL):
        plot_events(np.zeros(16000, dtype=np.float32), 16000, [], tmp_path / "events.png")
    assert not (tmp_path / "events.png").exists()


@pytest.fixture
def frame_data(tmp_path):
    """Two tone classes with events (one clip per split each): a frame task that validates with PSDS1."""
    rows, events = ["file,label,split"], ["filename\tonset\toffset\tevent_label"]
    time = np.arange(16000) / 16000
    for label, frequency in (("low", 220.0), ("high", 3000.0)):
        for split in ("train", "valid", "test"):
            name = f"{label}_{split}.wav"
            soundfile.write(tmp_path / name, (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32), 16000)
            rows.append(f"{name},{label},{split}")
            events.append(f"{name}\t0.2\t0.7\t{label}")
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "events.tsv").write_text("\n".join(events) + "\n")
    return tmp_path


def test_frame_training_without_the_sed_extra_fails_before_training(frame_data, tmp_path, monkeypatch):
    """finetune and distill validate with PSDS1: without sed_scores_eval they stop at the start of the run, not
    after an epoch (the model is never built here)."""
    import audiozoo.training.finetune as finetune
    from audiozoo.training.distill import DistillArgs, run_distill

    def not_reached(*args, **kwargs):
        raise AssertionError("the run went on to build its model without the SED metrics")

    monkeypatch.setattr(finetune, "_build_model", not_reached)
    monkeypatch.setitem(sys.modules, "sed_scores_eval", None)
    common = dict(data=str(frame_data / "data.csv"), events=str(frame_data / "events.tsv"), config="unused.json",
                  clip_seconds=1.0, cpu=True)
    with pytest.raises(ImportError, match=SED_INSTALL):
        finetune.run_finetune(finetune.FinetuneArgs(**common, output_dir=str(tmp_path / "finetune")))
    with pytest.raises(ImportError, match=SED_INSTALL):
        run_distill(DistillArgs(**common, output_dir=str(tmp_path / "distill"), pseudo_labels="unused.h5"))
    # a task without events has no PSDS1 to compute and does not need the extra
    with pytest.raises(AssertionError, match="build its model"):
        finetune.run_finetune(finetune.FinetuneArgs(data=str(frame_data / "data.csv"), config="unused.json",
                                                    output_dir=str(tmp_path / "single"), cpu=True))


# --- README and LICENSE ------------------------------------------------------------------------------------------

def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block; fails if a fence opens or closes with text after it, or stays open
    (GitHub then swallows what follows, headings included)."""
    blocks, language, lines, opened_at = [], None, [], 0
    for number, line in enumerate(text.splitlines(), start=1):
        if language is None:
            if line.lstrip().startswith("```"):
                match = re.fullmatch(r"```([\w+-]*)", line.strip())
                assert match, f"README.md line {number}: a fence opens with more than a language name: {line!r}"
                language, lines, opened_at = match.group(1), [], number
        elif line.lstrip().startswith("```"):
            assert line.strip() == "```", f"README.md line {number}: a fence must close on a line of its own: {line!r}"
            blocks.append((language, "\n".join(lines)))
            language = None
        else:
            assert "```" not in line, f"README.md line {number}: ``` inside a code block: {line!r}"
            lines.append(line)
    assert language is None, f"README.md: the fence opened on line {opened_at} is never closed"
    return blocks


def _undefined_modules(code: str) -> set[str]:
    """Names a snippet uses without defining that are modules (or their usual aliases): missing imports."""
    tree = ast.parse(code)
    defined = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    aliases = {"np", "pd", "plt", "sf"}
    return {name for name in used - defined if name in aliases or importlib.util.find_spec(name) is not None}


def test_readme_fences_are_closed_and_python_snippets_import_what_they_use():
    blocks = _fenced_blocks(README.read_text(encoding="utf-8"))
    python = [code for language, code in blocks if language == "python"]
    assert len(python) >= 2
    for code in python:
        missing = _undefined_modules(code)
        assert not missing, f"a README snippet uses {sorted(missing)} without importing them:\n{code}"


def test_readme_keeps_its_two_commands_and_points_only_at_what_a_user_has():
    text = README.read_text(encoding="utf-8")
    blocks = [code for _, code in _fenced_blocks(text)]
    # the two set-up commands (the first is also what CI runs)
    assert blocks[0] == FIRST_COMMAND and blocks[1] == "python -m pytest -q"
    assert FIRST_COMMAND in (REPO / ".ci" / "run").read_text()
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text
    for extra in ("`sed`", "`plot`", "`test`"):
        assert f"| {extra} |" in text
    # nothing outside the repository, and every repository path it names exists
    assert "../shared" not in text
    for path in re.findall(r"`((?:src|examples|tests|bench|conversion_scripts|model_cards|\.ci)/[^`\s]*)`", text):
        if not any(mark in path for mark in "<*"):
            assert (REPO / path).exists(), f"README.md names {path}, which does not exist"


def test_license_is_mit():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c) 2026 the audiozoo authors" in text
    assert 'license="MIT"' in (REPO / "setup.py").read_text()


# --- the drums example scripts -----------------------------------------------------------------------------------

@pytest.fixture
def fake_audiozoo(tmp_path):
    """An `audiozoo` first on PATH that records its arguments instead of training: the scripts' plumbing only."""
    folder = tmp_path / "bin"
    folder.mkdir()
    calls = tmp_path / "calls.txt"
    command = folder / "audiozoo"
    command.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "{calls}"\n')
    command.chmod(0o755)
    environment = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}

    def run(*arguments: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        calls.unlink(missing_ok=True)
        done = subprocess.run(["bash", *arguments], cwd=tmp_path, env=environment, capture_output=True, text=True)
        return done, calls.read_text().splitlines() if calls.exists() else []

    return run


def _label_folder(root):
    for label in ("kick", "snare"):
        (root / label).mkdir(parents=True)
        for index in range(2):
            soundfile.write(root / label / f"{label}_{index}.wav", np.zeros(1600, dtype=np.float32), 16000)
    return root


def test_drums_scripts_take_a_label_folder_or_a_manifest(fake_audiozoo, tmp_path):
    train, probe = str(REPO / "examples/drums/train.sh"), str(REPO / "examples/drums/ssl_probe.sh")
    for script in (train, probe):  # no data: a usage message, nothing run, nothing assumed about other folders
        done, calls = fake_audiozoo(script)
        assert done.returncode == 2 and "usage" in done.stderr and "README.md" in done.stderr and not calls
        done, calls = fake_audiozoo(script, "missing_folder")
        assert done.returncode == 2 and "not found" in done.stderr and not calls

    clips = _label_folder(tmp_path / "clips")
    done, calls = fake_audiozoo(train, "clips", "out")  # relative to where it is called
    assert done.returncode == 0, done.stderr
    assert calls[0].startswith(f"finetune --data {clips} ") and f"--output_dir {tmp_path / 'out'} " in calls[0]

    (clips / "details.csv").write_text("file,label,group\nkick/kick_0.wav,kick,kit1\n")  # the drums set's layout
    done, calls = fake_audiozoo(train, str(clips))
    assert done.returncode == 0 and calls[0].startswith(f"finetune --data {clips / 'details.csv'} ")
    (clips / "details.csv").unlink()

    # ssl_probe: a label folder becomes one manifest that pre-training and the probe both read (same split)
    done, calls = fake_audiozoo(probe, "clips", "ssl")
    assert done.returncode == 0, done.stderr
    manifest = tmp_path / "ssl" / "manifest.csv"
    lines = manifest.read_text().splitlines()
    assert lines[0] == "file,label" and len(lines) == 5
    assert f"{clips / 'kick' / 'kick_0.wav'},kick" in lines
    assert [call.split()[:2] for call in calls] == [["pretrain", "byol_a"]] * 2 + [["probe", "--model"]] * 2
    assert all(f"--data {manifest} " in call for call in calls)
