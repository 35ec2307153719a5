"""User mistakes on the command line: one line `audiozoo: error: ...` each, exit status 2 for wrong arguments and 1
for failed inputs, no traceback (unless --debug), every good file processed, and nothing heavy imported or loaded
before the arguments and files are known to be right. (Each case ended in a Python traceback before, or printed
transformers' progress bars and load reports.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from audiozoo import cli
from audiozoo.cli import main

from conftest import EXAMPLE_CLIP

AUDIOZOO = Path(sys.executable).with_name("audiozoo")


@pytest.fixture(scope="module")
def classifier_dir(converted_dir):
    return str(converted_dir("beats_tiny_finetuned"))


@pytest.fixture(scope="module")
def ssl_dir(converted_dir):
    return str(converted_dir("beats_tiny_ssl"))


@pytest.fixture(scope="module")
def sed_dir(converted_dir):
    return str(converted_dir("sed_atstf_tiny"))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """One file of each kind a user may pass by mistake."""
    folder = tmp_path_factory.mktemp("bad_files")
    samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    (folder / "not_audio.wav").write_text("this is not audio")
    (folder / "a_folder").mkdir()
    soundfile.write(folder / "nan.wav", np.full(rate, np.nan, dtype=np.float32), rate, subtype="FLOAT")
    soundfile.write(folder / "too_short.wav", samples[:50], rate)
    data = EXAMPLE_CLIP.read_bytes()
    (folder / "truncated.wav").write_bytes(data[: len(data) // 2])
    return {name: str(folder / name) for name in
            ("not_audio.wav", "a_folder", "nan.wav", "too_short.wav", "truncated.wav", "missing.wav")}


def _error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------------------------
# bad input files: each reported in one line, the good ones processed


@pytest.mark.parametrize("kind,message", [
    ("not_audio.wav", "could not decode"),
    ("missing.wav", "not found"),
    ("a_folder", "directory"),
    ("nan.wav", "NaN"),
    ("too_short.wav", "too short"),
    ("truncated.wav", "truncated"),
])
def test_a_bad_file_is_one_line_and_the_others_are_processed(classifier_dir, bad_files, capsys, kind, message):
    bad = bad_files[kind]
    status = main(["classify", bad, str(EXAMPLE_CLIP), "--model", classifier_dir, "--top-k", "1"])
    out, err = capsys.readouterr()
    assert status == 1
    lines = _error_lines(err)
    assert lines[0].startswith("audiozoo: error: ") and bad in lines[0] and message in lines[0]
    assert lines[1:] == ["audiozoo: error: 1 of 2 files failed"]
    assert out.splitlines()[0] == str(EXAMPLE_CLIP) and len(out.splitlines()) == 2  # the good file after it


def test_every_bad_file_is_reported_and_json_has_the_errors(classifier_dir, bad_files, capsys):
    files = [bad_files[name] for name in ("not_audio.wav", "missing.wav", "nan.wav", "too_short.wav")]
    status = main(["classify", *files, str(EXAMPLE_CLIP), "--model", classifier_dir, "--top-k", "1", "--json"])
    out, err = capsys.readouterr()
    assert status == 1
    parsed = json.loads(out)
    assert set(parsed) == {str(EXAMPLE_CLIP), "errors"} and len(parsed[str(EXAMPLE_CLIP)]) == 1
    assert list(parsed["errors"]) == files
    lines = _error_lines(err)
    assert len(lines) == len(files) + 1 and lines[-1] == "audiozoo: error: 4 of 5 files failed"


def test_on_error_stop_ends_at_the_first_bad_file(classifier_dir, bad_files, capsys, monkeypatch):
    # a file that fails the first check ends the run before the model loads
    monkeypatch.setattr(cli, "_load_library", lambda args: pytest.fail("the model code was loaded"))
    status = main(["classify", str(EXAMPLE_CLIP), bad_files["missing.wav"], bad_files["not_audio.wav"],
                   "--model", classifier_dir, "--on_error", "stop"])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    lines = _error_lines(err)
    assert len(lines) == 2 and "missing.wav" in lines[0] and "stopped there (--on_error stop)" in lines[1]
    monkeypatch.undo()
    # a file that fails while processed (NaN samples): the files before it are done, those after it are not
    status = main(["classify", str(EXAMPLE_CLIP), bad_files["nan.wav"], str(EXAMPLE_CLIP), "--model", classifier_dir,
                   "--top-k", "1", "--on_error", "stop"])
    out, err = capsys.readouterr()
    assert status == 1 and out.splitlines() == [str(EXAMPLE_CLIP), out.splitlines()[1]]
    assert "NaN" in _error_lines(err)[0]


def test_truncated_file_is_used_with_allow_truncated(classifier_dir, bad_files, capsys):
    truncated = bad_files["truncated.wav"]
    assert main(["classify", truncated, "--model", classifier_dir, "--top-k", "1", "--allow_truncated"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == truncated


def test_detect_takes_allow_truncated(sed_dir, bad_files, capsys):
    truncated = bad_files["truncated.wav"]
    assert main(["detect", truncated, "--model", sed_dir]) == 1
    assert "truncated" in capsys.readouterr().err
    assert main(["detect", truncated, "--model", sed_dir, "--allow_truncated", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == [truncated]


def test_embed_writes_the_good_files_and_fails_for_the_bad(ssl_dir, bad_files, tmp_path, capsys):
    output = tmp_path / "clips.safetensors"
    status = main(["embed", str(EXAMPLE_CLIP), bad_files["not_audio.wav"], bad_files["nan.wav"], str(EXAMPLE_CLIP),
                   "--model", ssl_dir, "--output", str(output)])
    out, err = capsys.readouterr()
    assert status == 1 and "wrote 2 clip embeddings" in out and "without the 2 failed files" in out
    from safetensors import safe_open

    with safe_open(str(output), "np") as handle:
        assert json.loads(handle.metadata()["files"]) == [str(EXAMPLE_CLIP)] * 2
        assert handle.get_tensor("embeddings").shape == (2, 64)
    assert len(_error_lines(err)) == 3


def test_no_good_file_means_no_model_load(classifier_dir, bad_files, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_load_library", lambda args: pytest.fail("the model code was loaded"))
    assert main(["classify", bad_files["missing.wav"], bad_files["a_folder"], "--model", classifier_dir]) == 1
    assert len(_error_lines(capsys.readouterr().err)) == 3
    assert main(["classify", bad_files["missing.wav"], "--model", classifier_dir, "--json"]) == 1
    assert list(json.loads(capsys.readouterr().out)["errors"]) == [bad_files["missing.wav"]]


def test_detect_json_stays_json_with_tsv(sed_dir, bad_files, tmp_path, capsys):
    tsv = tmp_path / "events.tsv"
    status = main(["detect", str(EXAMPLE_CLIP), bad_files["nan.wav"], "--model", sed_dir, "--json", "--tsv", str(tsv)])
    out, err = capsys.readouterr()
    assert status == 1 and set(json.loads(out)) == {str(EXAMPLE_CLIP), "errors"}
    assert f"events to {tsv}" in err and "NaN" in err  # the notices go to stderr with --json
    assert tsv.read_text().splitlines()[0] == "filename\tonset\toffset\tevent_label"


# --------------------------------------------------------------------------------------------------------------
# wrong arguments: argparse's usage errors (exit 2) naming the flag, before anything is loaded


@pytest.mark.parametrize("flags,named", [
    (["--threshold", "abc"], "--threshold"),
    (["--threshold", "1.5"], "--threshold"),
    (["--threshold", "Speech=x"], "--threshold"),
    (["--median-window", "x"], "--median-window"),
    (["--median-window", "0"], "--median-window"),
    (["--chunk-batch-size", "0"], "--chunk-batch-size"),
    (["--device", "gpu"], "--device"),
    (["--dtype", "float64"], "--dtype"),
    (["--dtype", "bf16"], "--dtype"),
])
def test_bad_flag_values_are_usage_errors(sed_dir, capsys, flags, named):
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", str(EXAMPLE_CLIP), "--model", sed_dir, *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"argument {named}" in err


def test_embed_output_suffix_is_a_usage_error(capsys):
    # checked when the list form is chosen (the dataset form, --data, writes .h5 or a folder), before any model loads
    assert main(["embed", str(EXAMPLE_CLIP), "--model", "x/y", "--output", "out.txt"]) == 2
    assert "must end in .npy or .safetensors" in capsys.readouterr().err


def test_unknown_class_name_lists_close_names_before_any_file(sed_dir, capsys, monkeypatch):
    import transformers

    monkeypatch.setattr(transformers, "pipeline", lambda *a, **k: pytest.fail("the model was loaded"))
    status = main(["detect", str(EXAMPLE_CLIP), "--model", sed_dir, "--threshold", "Spech=0.3"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    (line,) = _error_lines(err)
    assert line.startswith("audiozoo: error: --threshold: the model has no class 'Spech'") and "'Speech'" in line
    assert main(["detect", str(EXAMPLE_CLIP), "--model", sed_dir, "--median-window", "Speech=3", "Spech=3"]) == 2
    assert "'Speech'" in capsys.readouterr().err
    assert main(["detect", str(EXAMPLE_CLIP), "--model", sed_dir, "--threshold", "0.3", "Speech=0.2"]) == 2
    assert "mix of plain and LABEL=VALUE" in capsys.readouterr().err


def test_plot_of_several_files_is_refused_before_loading(sed_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "_load_library", lambda args: pytest.fail("the model code was loaded"))
    status = main(["detect", str(EXAMPLE_CLIP), str(EXAMPLE_CLIP), "--model", sed_dir,
                   "--plot", str(tmp_path / "p.png")])
    assert status == 2 and "--plot draws one file" in capsys.readouterr().err


def test_cuda_without_cuda_is_an_error_not_a_cpu_fallback(classifier_dir, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["classify", str(EXAMPLE_CLIP), "--model", classifier_dir, "--device", "cuda"]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith("audiozoo: error: --device cuda:") and "use --device cpu" in line
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert main(["classify", str(EXAMPLE_CLIP), "--model", classifier_dir, "--device", "cuda:3"]) == 2
    assert "there is 1 CUDA device (cuda:0)" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# --model: local paths are never looked up on the Hub


@pytest.fixture
def no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the command line went to the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_mistyped_model_folder_fails_at_once(converted_dir, capsys, no_network, monkeypatch):
    folder = Path(converted_dir("beats_tiny_finetuned"))
    monkeypatch.chdir(folder.parent)
    for typo in (f"{folder}x", f"./{folder.name}x", f"{folder.name}/nested/x", "not_a_folder"):
        assert main(["classify", str(EXAMPLE_CLIP), "--model", typo]) == 1
        (line,) = _error_lines(capsys.readouterr().err)
        assert line.startswith(f"audiozoo: error: no model folder {typo}") and "contains:" in line
    assert main(["classify", str(EXAMPLE_CLIP), "--model", f"{folder}x"]) == 1
    assert f"{folder.name}/" in capsys.readouterr().err  # the folder the user meant is listed


def test_folder_without_config_and_file_as_model(tmp_path, capsys, no_network):
    (tmp_path / "weights.bin").write_bytes(b"")
    assert main(["classify", str(EXAMPLE_CLIP), "--model", str(tmp_path)]) == 1
    assert "has no config.json" in capsys.readouterr().err
    assert main(["classify", str(EXAMPLE_CLIP), "--model", str(tmp_path / "weights.bin")]) == 1
    assert "is a file" in capsys.readouterr().err


def test_unreachable_hub_id_is_one_line(capsys, monkeypatch):
    import transformers

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your connection.")

    monkeypatch.setattr(transformers, "pipeline", offline)
    assert main(["classify", str(EXAMPLE_CLIP), "--model", "some-org/some-model"]) == 1
    (line,) = _error_lines(capsys.readouterr().err)
    assert "some-org/some-model is neither a local folder nor reachable on the Hugging Face Hub" in line


# --------------------------------------------------------------------------------------------------------------
# --debug, unexpected errors, quiet loading


def test_debug_shows_the_traceback(bad_files):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "classify", bad_files["missing.wav"]])
    with pytest.raises(FileNotFoundError):
        main(["classify", bad_files["missing.wav"], "--debug"])


def test_unexpected_error_is_one_line_with_the_hint(classifier_dir, capsys, monkeypatch):
    import transformers

    def broken(*args, **kwargs):
        def run(*args, **kwargs):
            raise RuntimeError("boom\nsecond line")

        return run

    monkeypatch.setattr(transformers, "pipeline", broken)
    assert main(["classify", str(EXAMPLE_CLIP), "--model", classifier_dir]) == 1
    (line,) = _error_lines(capsys.readouterr().err)
    assert line == f"audiozoo: error: {EXAMPLE_CLIP}: RuntimeError: boom (run with --debug for the traceback)"


def test_no_progress_bars_or_load_reports(converted_dir, classifier_dir, tmp_path, capfd):
    """embed on a classifier folder printed transformers' LOAD REPORT (the head's weights); every command printed
    the 'Loading weights' bars."""
    assert main(["classify", str(EXAMPLE_CLIP), "--model", classifier_dir]) == 0
    assert main(["embed", str(EXAMPLE_CLIP), "--model", classifier_dir, "--output", str(tmp_path / "e.npy")]) == 0
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "LOAD REPORT" not in err and err.strip() == ""


def test_encoder_of_a_classifier_folder_is_the_same_as_automodel(classifier_dir):
    from transformers import AutoModel

    from audiozoo.inference.embeddings import load_encoder

    _, encoder = load_encoder(classifier_dir)
    reference = AutoModel.from_pretrained(classifier_dir, dtype=torch.float32)
    assert type(encoder) is type(reference)
    ours, theirs = encoder.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[key], theirs[key]) for key in ours)


# --------------------------------------------------------------------------------------------------------------
# push


def test_push_prints_the_uploaded_files(classifier_dir, capsys, monkeypatch):
    import audiozoo.hub.push as hub_push

    calls = []

    def fake_push(folder, repo_id, *, private=False, commit_message=None, own_weights=False):
        calls.append((str(folder), repo_id, private, commit_message, own_weights))
        return ["config.json", "model.safetensors"]

    monkeypatch.setattr(hub_push, "push_model_folder", fake_push)
    assert main(["push", classifier_dir, "me/beats", "--private", "--commit_message", "first"]) == 0
    assert calls == [(classifier_dir, "me/beats", True, "first", False)]
    assert capsys.readouterr().out.splitlines() == [
        "uploaded 2 files to https://huggingface.co/me/beats:", "  config.json", "  model.safetensors"]

    def failing_push(*args, **kwargs):
        raise OSError("401 Client Error: Unauthorized\nInvalid credentials")

    monkeypatch.setattr(hub_push, "push_model_folder", failing_push)
    assert main(["push", classifier_dir, "me/beats"]) == 1
    (line,) = _error_lines(capsys.readouterr().err)
    assert line == f"audiozoo: error: could not push {classifier_dir} to me/beats: 401 Client Error: Unauthorized"


def test_push_of_a_folder_that_is_no_model(tmp_path, capsys):
    assert main(["push", str(tmp_path), "me/x"]) == 1
    (line,) = _error_lines(capsys.readouterr().err)
    assert "config.json" in line


# --------------------------------------------------------------------------------------------------------------
# the real command: exit statuses, no traceback, nothing heavy imported before the arguments are checked


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(AUDIOZOO), *argv], capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_the_command_exit_statuses(tmp_path):
    assert AUDIOZOO.is_file(), "the audiozoo console script is not installed beside this interpreter"
    done = _run("--help")
    assert done.returncode == 0 and "classify" in done.stdout and "push" in done.stdout
    done = _run("classify", "--top-k", "many", str(EXAMPLE_CLIP))
    assert done.returncode == 2 and "argument --top-k" in done.stderr and "Traceback" not in done.stderr
    done = _run("classify", str(tmp_path / "missing.wav"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"audiozoo: error: audio file not found: {tmp_path / 'missing.wav'}"


def test_parsing_imports_no_model_code():
    """--help, the usage errors and a missing file are answered before torch / transformers are imported (the
    model code) — `audiozoo --help` took 17-23 s on a busy machine. Measured in bench/bench_startup.py."""
    script = """
import os, sys
os.environ["AUDIOZOO_DEFER_REGISTRATION"] = "1"
from audiozoo_cli import main
for argv in (["--help"], ["pretrain", "eat", "--help"], ["convert", "beats", "--help"], ["classify"],
             ["detect", "x.wav", "--model", "m/n", "--threshold", "abc"]):
    try:
        main(argv)
    except SystemExit:
        pass
    assert "torch" not in sys.modules and "transformers" not in sys.modules, argv
status = main(["classify", "missing.wav"])
assert status == 1 and "transformers" not in sys.modules
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr


def test_plot_without_matplotlib_fails_before_any_model_loads(sed_dir, capsys, monkeypatch):
    """The base install has no matplotlib: `detect --plot` says which extra to install, in one line, at once."""
    import importlib.util

    import transformers

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "matplotlib" else real_find_spec(name, *args))
    monkeypatch.setattr(transformers, "pipeline", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(["detect", str(EXAMPLE_CLIP), "--model", sed_dir, "--plot", "out.png"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == 'audiozoo: error: --plot needs matplotlib, which is not part of the base install: ' \
                    'pip install "audiozoo[plot]"'
