"""The dataset commands on the command line: `embed --data`, `predict`, `pseudo-label` run the inference runner and
give what it gives; mistakes are one line with the right exit status; the list-of-files `embed` keeps working."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile

from audiozoo.cli import main
from audiozoo.inference.runner import run_inference


def _tone(frequency: float, seconds: float) -> np.ndarray:
    time = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli_data")
    rows = ["file"]
    for index, seconds in enumerate((1.0, 2.5, 1.0)):
        soundfile.write(folder / f"clip_{index}.wav", _tone(300.0 * (index + 1), seconds), 16000)
        rows.append(f"clip_{index}.wav")
    (folder / "clips.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_embed_with_data_writes_what_the_runner_writes(data, converted_dir, tmp_path):
    model = str(converted_dir("byola_v1_d512"))
    out = tmp_path / "cli.h5"
    assert main(["embed", "--data", str(data / "clips.csv"), "--model", model, "--output", str(out),
                 "--num_workers", "0"]) == 0
    reference = run_inference("embed", data / "clips.csv", tmp_path / "direct.h5", model=model, num_workers=0,
                              progress=False)
    with h5py.File(out, "r") as cli_file, h5py.File(reference, "r") as direct:
        np.testing.assert_array_equal(cli_file["embeddings"][:], direct["embeddings"][:])
        assert [name.decode() for name in cli_file["filenames"][:]] == [f"clip_{i}.wav" for i in range(3)]


def test_predict_and_pseudo_label_commands(data, converted_dir, tmp_path):
    teacher = str(converted_dir("sed_atstf_tiny"))
    predicted = tmp_path / "frames.h5"
    assert main(["predict", "--data", str(data), "--model", teacher, "--level", "frame", "--output", str(predicted),
                 "--num_workers", "0"]) == 0
    with h5py.File(predicted, "r") as handle:
        assert handle.attrs["frame_rate"] == 25 and len(handle["filenames"]) == 3
    labels = tmp_path / "ensemble.h5"
    assert main(["pseudo-label", "--data", str(data / "clips.csv"), "--teachers", teacher, teacher,
                 "--output", str(labels), "--num_workers", "0"]) == 0
    with h5py.File(labels, "r") as handle:
        assert handle["strong_logits"].dtype == np.float16 and handle["strong_logits"].shape[0] == 3


@pytest.mark.parametrize("argv, message", [
    (["embed", "a.wav", "--data", "x.csv", "--model", "m", "--output", "o.h5"], "not both"),
    (["embed", "--model", "m", "--output", "o.npy"], "give audio files, or --data"),
    (["embed", "a.wav", "--model", "m", "--output", "o.npy", "--layer", "2"], "--layer apply to --data runs only"),
    (["embed", "a.wav", "--model", "m", "--output", "o.h5"], "must end in .npy or .safetensors"),
    (["predict", "--data", "x.csv", "--model", "m", "--output", "o.h5", "--device", "gpu7"], "unknown device"),
])
def test_usage_mistakes_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("audiozoo: error:") and message in error and "\n" not in error


def test_missing_data_and_model_fail_before_any_model_loads(data, converted_dir, capsys, tmp_path):
    model = str(converted_dir("byola_v1_d512"))
    assert main(["predict", "--data", str(tmp_path / "nope.csv"), "--model", model, "--output", "o.h5"]) == 1
    assert "--data" in capsys.readouterr().err
    assert main(["pseudo-label", "--data", str(data), "--teachers", str(tmp_path / "no_model"),
                 "--output", "o.h5"]) == 1
    assert "no model folder" in capsys.readouterr().err


def test_skipped_rows_are_listed_and_exit_1(data, converted_dir, tmp_path, capsys):
    manifest = tmp_path / "bad.csv"
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    rows = [str(data / "clip_0.wav"), str(tmp_path / "broken.wav")]
    manifest.write_text("file\n" + "\n".join(rows) + "\n")
    out = tmp_path / "skip.h5"
    assert main(["embed", "--data", str(manifest), "--model", str(converted_dir("byola_v1_d512")), "--output", str(out),
                 "--on_error", "skip", "--num_workers", "0"]) == 1
    printed = capsys.readouterr().out
    assert "1 rows skipped" in printed and Path(f"{out}.errors.tsv").is_file()
    assert main(["embed", "--data", str(manifest), "--model", str(converted_dir("byola_v1_d512")),
                 "--output", str(tmp_path / "stop.h5"), "--num_workers", "0"]) == 1
    assert "broken.wav" in capsys.readouterr().err


def test_clip_predictions_of_a_windowed_model_on_long_clips_equal_the_pipeline(converted_dir, tmp_path):
    """ATST-Frame takes at most 10 s: `predict --level clip` classifies a 25 s clip window by window, with the
    audio-classification pipeline's aggregation (highest window probability per class)."""
    from transformers import pipeline

    model = str(converted_dir("sed_atstf_tiny"))
    long_clip = np.concatenate([_tone(440.0, 12.0), _tone(2000.0, 13.0)])
    soundfile.write(tmp_path / "long.wav", long_clip, 16000)
    out = run_inference("predict", tmp_path, tmp_path / "p.h5", model=model, num_workers=0, progress=False)
    with h5py.File(out, "r") as handle:
        probabilities = handle["probabilities"][0]
        labels = [name.decode() for name in handle["labels"][:]]
    scores = pipeline("audio-classification", model=model)(str(tmp_path / "long.wav"), top_k=len(labels))
    expected = {entry["label"]: entry["score"] for entry in scores}
    np.testing.assert_allclose(probabilities, [expected[label] for label in labels], atol=1e-6)
