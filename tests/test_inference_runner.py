"""The dataset-scale runner (`audiozoo.inference.runner`): equal to a per-file loop, to itself on two processes and
after a kill and resume; teacher-ensemble pseudo labels that `audiozoo distill` trains from; bad rows named."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile
import torch

import audiozoo
from audiozoo.audio.io import resample
from audiozoo.inference.runner import RunInterrupted, run_inference

# seconds per clip: repeated lengths share batches; one clip at 22.05 kHz is resampled on the way in
LENGTHS = (1.0, 1.5, 1.0, 2.0, 1.5, 1.0, 0.8, 1.0, 1.2)
OTHER_RATE_ROW = 3


def _tone(frequency: float, seconds: float, seed: int, rate: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * time) + 0.02 * rng.standard_normal(time.size)).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Generated clips in a sub-folder and a manifest (file column only) one level up."""
    folder = tmp_path_factory.mktemp("clips")
    (folder / "audio").mkdir()
    rows = ["file"]
    for index, seconds in enumerate(LENGTHS):
        rate = 22050 if index == OTHER_RATE_ROW else 16000
        soundfile.write(folder / "audio" / f"clip_{index}.wav", _tone(200.0 * (index + 1), seconds, index, rate), rate)
        rows.append(f"audio/clip_{index}.wav")
    (folder / "clips.csv").write_text("\n".join(rows) + "\n")
    return folder


def _waveform(path: Path) -> np.ndarray:
    samples, rate = soundfile.read(path, dtype="float32")
    return samples if rate == 16000 else resample(samples, rate, 16000)


def _clip_values(path: Path, name: str) -> list[np.ndarray]:
    """Each clip's array from a merged file, whatever its layout."""
    with h5py.File(path, "r") as handle:
        values = handle[name][:]
        if "offsets" in handle:
            offsets = handle["offsets"][:]
            return [values[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        if handle.attrs["layout"] == "padded":  # cut each clip to its frames (time: [C, T] pseudo labels, else [T, D])
            axis = 1 if name == "strong_logits" else 0
            return [np.take(clip, np.arange(frames), axis=axis)
                    for clip, frames in zip(values, handle["num_frames"][:], strict=True)]
        return list(values)


def _run(clips, out, **options) -> Path:
    values = dict(batch_size=3, shard_size=4, num_workers=0, progress=False)
    values.update(options)
    return run_inference(values.pop("task", "embed"), clips / "clips.csv", out, **values)


@pytest.fixture(scope="module")
def byol(converted_dir) -> str:
    return str(converted_dir("byola_v1_d512"))


@pytest.fixture(scope="module")
def frame_run(clips, byol, tmp_path_factory) -> Path:
    """Frame embeddings of one process, with clips of mixed lengths padded into shared batches (BYOL-A zeroes
    padded frames, so its outputs do not depend on the padding)."""
    return _run(clips, tmp_path_factory.mktemp("frames") / "frames.h5", model=byol, level="frame", max_padding=1.0)


def test_runner_equals_a_per_file_loop(clips, byol, frame_run, tmp_path):
    from transformers import AutoFeatureExtractor, AutoModel

    clip_run = _run(clips, tmp_path / "clip.h5", model=byol, num_workers=2)
    extractor = AutoFeatureExtractor.from_pretrained(byol)
    model = AutoModel.from_pretrained(byol, dtype=torch.float32).eval()
    pooled, frames = [], []
    with torch.no_grad():
        for index in range(len(LENGTHS)):
            waveform = _waveform(clips / "audio" / f"clip_{index}.wav")
            encoded = model(**extractor([waveform], sampling_rate=16000, return_tensors="pt"))
            pooled.append(encoded.pooler_output[0].numpy())
            frames.append(model.frame_features(encoded)[0][0].numpy())
    with h5py.File(clip_run, "r") as handle:
        assert handle["embeddings"].shape == (len(LENGTHS), pooled[0].size)
        assert [name.decode() for name in handle["filenames"][:]] == [f"audio/clip_{i}.wav" for i in range(len(LENGTHS))]
        assert handle["rows"][:].tolist() == list(range(len(LENGTHS)))
        assert handle.attrs["task"] == "embed" and handle.attrs["level"] == "clip" and handle.attrs["layout"] == "stacked"
        np.testing.assert_allclose(handle["embeddings"][:], np.stack(pooled), atol=1e-6, rtol=0)
    with h5py.File(frame_run, "r") as handle:
        assert handle.attrs["layout"] == "ragged" and handle.attrs["frame_rate"] == model.config.frame_rate
        assert handle["num_frames"][:].tolist() == [len(clip) for clip in frames]
    for ours, reference in zip(_clip_values(frame_run, "embeddings"), frames, strict=True):
        np.testing.assert_allclose(ours, reference, atol=1e-6, rtol=0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_write_what_one_process_writes(clips, byol, frame_run, tmp_path):
    # accelerate's own `--cpu` flag starts one process (several need an MPI hostfile); its torchrun launcher starts
    # two, which form a gloo group when the runner is told to run on the CPU
    output = tmp_path / "frames.h5"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), "-m", "audiozoo.inference.runner", "embed",
               "--data", str(clips / "clips.csv"), "--model", byol, "--output", str(output), "--level", "frame",
               "--batch_size", "3", "--shard_size", "4", "--num_workers", "0", "--max_padding", "1.0",
               "--device", "cpu"]
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(process 1 of 2)" in done.stderr  # the main process's progress bar: two processes shared the work
    with h5py.File(output, "r") as ours, h5py.File(frame_run, "r") as reference:
        assert ours["filenames"][:].tolist() == reference["filenames"][:].tolist()
        assert ours["num_frames"][:].tolist() == reference["num_frames"][:].tolist()
        np.testing.assert_allclose(ours["embeddings"][:], reference["embeddings"][:], atol=1e-6, rtol=0)
    assert not Path(f"{output}.shards").exists()


def test_a_killed_run_resumes_to_the_same_output(clips, converted_dir, tmp_path):
    model = str(converted_dir("beats_tiny_finetuned"))
    complete = _run(clips, tmp_path / "complete.h5", task="predict", model=model)
    killed = tmp_path / "killed.h5"
    with pytest.raises(RunInterrupted):
        _run(clips, killed, task="predict", model=model, stop_after_shards=1)
    shards = Path(f"{killed}.shards")
    assert sorted(path.name for path in shards.glob("shard-*")) == ["shard-00000.h5"] and not killed.exists()
    (shards / "shard-00001.h5.tmp-999").write_bytes(b"half a shard")  # what a kill mid-write leaves
    with pytest.raises(FileExistsError, match="--resume"):
        _run(clips, killed, task="predict", model=model)
    with pytest.raises(ValueError, match="batch_size: 3 -> 2"):
        _run(clips, killed, task="predict", model=model, batch_size=2, resume=True)
    _run(clips, killed, task="predict", model=model, resume=True)
    with h5py.File(complete, "r") as reference, h5py.File(killed, "r") as resumed:
        assert reference["probabilities"].shape == (len(LENGTHS), 10) and resumed.attrs["activation"] == "sigmoid"
        for name in ("probabilities", "filenames", "rows", "labels"):
            assert np.array_equal(reference[name][:], resumed[name][:])
    assert not shards.exists()
    # a folder output keeps its shards, with an index in source order
    folder = _run(clips, tmp_path / "sharded", task="predict", model=model)
    index = json.loads((folder / "index.json").read_text())
    assert [shard["file"] for shard in index["shards"]] == ["shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]
    assert index["clips"] == len(LENGTHS) and index["value_name"] == "probabilities"


TINY_ATST = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
             "sed_head": {"seq_len": 25, "window_seconds": 1.0}}
LABELS = ["high", "low", "mid"]


def _teacher(folder: Path, seed: int, labels=LABELS, seq_len: int = 25) -> str:
    """A random tiny ATST-Frame frame classifier with a PretrainedSED head on 1 s windows."""
    torch.manual_seed(seed)
    settings = {**TINY_ATST, "sed_head": {"seq_len": seq_len, "window_seconds": 1.0}}
    config = audiozoo.AtstFrameConfig(**settings, id2label=dict(enumerate(labels)),
                                      label2id={label: i for i, label in enumerate(labels)})
    audiozoo.AtstFrameForAudioFrameClassification(config).save_pretrained(folder)
    audiozoo.AtstFrameFeatureExtractor().save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("teachers")
    return [_teacher(root / "a", 0), _teacher(root / "b", 1)]


def _separate_teacher_logits(teacher: str, waveform: np.ndarray) -> np.ndarray:
    """One teacher alone, window by window (1 s, the last zero-padded): strong logits [C, T]."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioFrameClassification

    extractor = AutoFeatureExtractor.from_pretrained(teacher)
    model = AutoModelForAudioFrameClassification.from_pretrained(teacher, dtype=torch.float32).eval()
    windows = int(np.ceil(waveform.size / 16000))
    padded = np.zeros(windows * 16000, dtype=np.float32)
    padded[: waveform.size] = waveform
    with torch.no_grad():
        logits = [model(**extractor([window], sampling_rate=16000, return_tensors="pt")).logits[0]
                  for window in padded.reshape(windows, 16000)]
    return torch.cat(logits).T.numpy()


def test_pseudo_labels_average_the_teachers_and_distill_trains_from_them(clips, teachers, tmp_path):
    output = _run(clips, tmp_path / "pseudo.h5", task="pseudo-label", teachers=teachers, num_workers=1)
    with h5py.File(output, "r") as handle:
        logits = handle["strong_logits"]
        # 1 s windows, 25 frames each: clips of 2 windows (1.2-2.0 s) set T = 50, shorter ones are padded
        assert logits.dtype == np.float16 and logits.shape == (len(LENGTHS), 3, 50)
        assert handle["num_frames"][:].tolist() == [25 * int(np.ceil(s)) for s in LENGTHS]
        assert handle.attrs["layout"] == "padded" and handle.attrs["frame_rate"] == 25.0
        assert [label.decode() for label in handle["labels"][:]] == LABELS
        assert np.all(logits[0, :, 25:] == -20.0)
    for index, ours in enumerate(_clip_values(output, "strong_logits")):
        waveform = _waveform(clips / "audio" / f"clip_{index}.wav")
        mean = np.mean([_separate_teacher_logits(teacher, waveform) for teacher in teachers], axis=0)
        assert ours.shape == mean.shape
        np.testing.assert_allclose(ours.astype(np.float32), mean, rtol=2e-3, atol=2e-3)  # float16 storage

    # `audiozoo distill` trains a student from a file written by the runner
    from audiozoo.training.distill import DistillArgs, run_distill

    data = tmp_path / "tones"
    data.mkdir()
    rows, events = ["file,label,split"], ["filename\tonset\toffset\tevent_label"]
    for label, frequency in zip(LABELS, (3000.0, 220.0, 880.0), strict=True):
        for index, split in enumerate(("train", "train", "valid")):
            name = f"{label}_{index}.wav"
            soundfile.write(data / name, _tone(frequency, 1.0, index), 16000)
            rows.append(f"{name},{label},{split}")
            events.append(f"{name}\t0.2\t0.7\t{label}")
    (data / "data.csv").write_text("\n".join(rows) + "\n")
    (data / "events.tsv").write_text("\n".join(events) + "\n")
    (data / "student.json").write_text(json.dumps({"model_type": "audiozoo-atst-frame", **TINY_ATST}))
    labels_file = run_inference("pseudo-label", data / "data.csv", tmp_path / "tones.h5", teachers=teachers,
                                batch_size=4, num_workers=0, progress=False)
    result = run_distill(DistillArgs(data=str(data / "data.csv"), output_dir=str(tmp_path / "student"),
                                     config=str(data / "student.json"), events=str(data / "events.tsv"),
                                     pseudo_labels=str(labels_file), clip_seconds=1.0, batch_size=3, max_steps=2,
                                     epochs=1, cpu=True))
    assert len(result.losses) == 2 and all(np.isfinite(loss) for _, loss in result.losses)


def test_teachers_that_disagree_are_named(clips, teachers, tmp_path):
    other_labels = _teacher(tmp_path / "other_labels", 2, labels=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"different label sets.*other_labels") as raised:
        _run(clips, tmp_path / "x.h5", task="pseudo-label", teachers=[*teachers, other_labels])
    assert teachers[0] in str(raised.value)
    other_rate = _teacher(tmp_path / "fifty_per_second", 3, seq_len=50)
    with pytest.raises(ValueError, match=r"different frame rates.*fifty_per_second"):
        _run(clips, tmp_path / "x.h5", task="pseudo-label", teachers=[teachers[0], other_rate])


def test_bad_rows_stop_the_run_or_are_skipped_and_listed(clips, byol, tmp_path):
    (tmp_path / "not_audio.wav").write_text("this is not audio")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    soundfile.write(tmp_path / "too_short.wav", np.zeros(50, dtype=np.float32), 16000)  # readable, too short
    good = [str(clips / "audio" / f"clip_{index}.wav") for index in range(3)]
    manifest = tmp_path / "bad.tsv"
    manifest.write_text("\n".join(["path", good[0], "missing.wav", "not_audio.wav", good[1], "empty.wav",
                                   "too_short.wav", good[2]]) + "\n")
    output = tmp_path / "out.h5"
    with pytest.raises(ValueError) as raised:
        run_inference("embed", manifest, output, model=byol, num_workers=0, progress=False)
    message = str(raised.value)
    assert "3 row(s) cannot be read; nothing was computed" in message
    for line, name in ((3, "missing.wav"), (4, "not_audio.wav"), (6, "empty.wav")):
        assert f"bad.tsv, line {line}:" in message and name in message
    assert not output.exists() and not list(Path(f"{output}.shards").glob("[rs]*"))  # no run.json, no shard
    # the short clip passes the header check and stops the run when the model refuses it, naming its line
    manifest.write_text("\n".join(["path", good[0], "too_short.wav"]) + "\n")
    with pytest.raises(ValueError, match=r"bad.tsv, line 3: the model cannot process it"):
        run_inference("embed", manifest, output, model=byol, num_workers=0, progress=False)

    manifest.write_text("\n".join(["path", good[0], "missing.wav", "not_audio.wav", good[1], "empty.wav",
                                   "too_short.wav", good[2]]) + "\n")
    skipped = tmp_path / "skipped.h5"
    run_inference("embed", manifest, skipped, model=byol, num_workers=0, progress=False, on_error="skip",
                  batch_size=4, max_padding=100.0)
    with h5py.File(skipped, "r") as handle:
        assert handle["rows"][:].tolist() == [0, 3, 6]
        assert handle["embeddings"].shape[0] == 3
    listed = (tmp_path / "skipped.h5.errors.tsv").read_text().splitlines()
    assert listed[0] == "row\tsource\tfile\tmessage" and len(listed) == 5
    assert [line.split("\t")[:3] for line in listed[1:]] == [
        ["1", f"{manifest}, line 3", "missing.wav"], ["2", f"{manifest}, line 4", "not_audio.wav"],
        ["4", f"{manifest}, line 6", "empty.wav"], ["5", f"{manifest}, line 7", "too_short.wav"]]
    assert "the model cannot process it" in listed[-1]


def test_argument_adders_are_torch_free_and_fill_run_inference():
    code = ("import argparse, sys\n"
            "from audiozoo.inference.options import add_embed_arguments, add_pseudo_label_arguments, "
            "inference_options\n"
            "parser = argparse.ArgumentParser(); add_embed_arguments(parser)\n"
            "args = parser.parse_args(['--data', 'd.csv', '--model', 'm', '--output', 'o.h5', '--level', 'frame',"
            " '--layer', '3', '--on_error', 'skip'])\n"
            "options = inference_options('embed', args)\n"
            "assert options['layer'] == 3 and options['level'] == 'frame' and options['on_error'] == 'skip'\n"
            "parser = argparse.ArgumentParser(); add_pseudo_label_arguments(parser)\n"
            "args = parser.parse_args(['--data', 'd', '--teachers', 'a', 'b', '--output', 'o.h5'])\n"
            "assert inference_options('pseudo-label', args)['teachers'] == ('a', 'b')\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    environment = {**os.environ, "AUDIOZOO_DEFER_REGISTRATION": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=60)
    assert done.returncode == 0, done.stderr
