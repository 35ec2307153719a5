"""The main job end to end on real audio: pipeline("audio-classification") and `audiozoo classify | embed`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import soxr
import torch
from safetensors.numpy import load_file
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

from audiozoo.cli import main

from conftest import EXAMPLE_CLIP


@pytest.fixture(scope="module")
def classifier_dir(converted_dir):
    return converted_dir("beats_tiny_finetuned")


@pytest.fixture(scope="module")
def reference_probs(classifier_dir):
    """Probabilities of the example clip computed directly with the feature extractor and the model."""
    samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    assert rate == 16000
    fe = AutoFeatureExtractor.from_pretrained(classifier_dir)
    model = AutoModelForAudioClassification.from_pretrained(classifier_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return torch.sigmoid(model(**fe(samples, sampling_rate=16000)).logits[0])


def _as_dict(results) -> dict[str, float]:
    return {entry["label"]: entry["score"] for entry in results}


def test_pipeline_on_a_file_path_array_and_dict(classifier_dir, reference_probs):
    classify = pipeline("audio-classification", model=classifier_dir, dtype=torch.float32)
    samples, _ = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    labels = classify.model.config.id2label
    expected = {labels[i]: float(p) for i, p in enumerate(reference_probs)}
    for given in (str(EXAMPLE_CLIP), samples, {"array": samples, "sampling_rate": 16000}):
        results = classify(given, top_k=3)
        assert len(results) == 3
        for label, score in _as_dict(results).items():
            assert score == pytest.approx(expected[label], abs=1e-6)
        assert results[0]["score"] == pytest.approx(max(expected.values()), abs=1e-6)


def test_pipeline_resamples_downmixes_and_converts_int16(classifier_dir, tmp_path, reference_probs):
    """A 44.1 kHz stereo int16 file and array give the same scores as resampling by hand (soxr)."""
    classify = pipeline("audio-classification", model=classifier_dir, dtype=torch.float32)
    samples, _ = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    at_44k = soxr.resample(samples, 16000, 44100, "HQ")
    stereo_int16 = np.round(np.stack([at_44k, at_44k], axis=1) * 32767).astype(np.int16)
    path = tmp_path / "stereo_44k.wav"
    soundfile.write(path, stereo_int16, 44100, subtype="PCM_16")

    by_hand = soxr.resample(stereo_int16.astype(np.float32).mean(axis=1) / 32768, 44100, 16000, "HQ")
    expected = _as_dict(classify(by_hand.astype(np.float32), top_k=None))
    from_file = _as_dict(classify(str(path), top_k=None))
    from_array = _as_dict(classify(stereo_int16, sampling_rate=44100, top_k=None))
    from_dict = _as_dict(classify({"array": stereo_int16, "sampling_rate": 44100}, top_k=None))
    for results in (from_file, from_array, from_dict):
        assert results.keys() == expected.keys()
        for label in expected:
            assert results[label] == pytest.approx(expected[label], abs=1e-5)
    # resampled audio stays close to the 16 kHz original
    original = dict(zip(classify.model.config.id2label.values(), reference_probs.tolist(), strict=True))
    assert max(abs(from_file[k] - original[k]) for k in original) < 0.05


def test_pipeline_batches_clips_of_different_lengths(classifier_dir):
    classify = pipeline("audio-classification", model=classifier_dir, dtype=torch.float32)
    samples, _ = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    results = classify([samples, samples[:20000]], batch_size=2, top_k=2)
    assert len(results) == 2 and all(len(r) == 2 for r in results)


def test_classify_cli_prints_top_labels(classifier_dir, capsys, reference_probs):
    assert main(["classify", str(EXAMPLE_CLIP), "--model", str(classifier_dir), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == str(EXAMPLE_CLIP) and len(lines) == 3
    top_score = float(lines[1].split()[0])
    assert top_score == pytest.approx(float(reference_probs.max()), abs=1e-4)

    assert main(["classify", str(EXAMPLE_CLIP), "--model", str(classifier_dir), "--top-k", "1", "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert list(parsed) == [str(EXAMPLE_CLIP)] and len(parsed[str(EXAMPLE_CLIP)]) == 1


def test_embed_cli_writes_clip_and_frame_embeddings(converted_dir, tmp_path, capsys):
    model_dir = converted_dir("beats_tiny_ssl")
    clip_npy = tmp_path / "clips.npy"
    assert main(["embed", str(EXAMPLE_CLIP), str(EXAMPLE_CLIP), "--model", str(model_dir),
                 "--output", str(clip_npy)]) == 0
    clips = np.load(clip_npy)
    assert clips.shape == (2, 64) and np.allclose(clips[0], clips[1])

    frames_file = tmp_path / "frames.safetensors"
    assert main(["embed", str(EXAMPLE_CLIP), "--model", str(model_dir), "--output", str(frames_file),
                 "--level", "frame"]) == 0
    frames = load_file(frames_file)["frames_0"]
    # 4 s -> 398 fbank frames -> 24 time steps of 16 frames
    assert frames.shape == (24, 64)
    # a usage error (exit status 2), before the model loads
    assert main(["embed", str(EXAMPLE_CLIP), "--model", str(model_dir), "--output", str(tmp_path / "x.txt")]) == 2
    assert "must end in .npy or .safetensors" in capsys.readouterr().err


@pytest.mark.parametrize("case_name,steps", [("ast_tiny_f10", 9), ("eat_tiny_finetuned", 16), ("beats_tokenizer_tiny", 24)])
def test_classify_and_embed_for_every_family(converted_dir, tmp_path, capsys, case_name, steps):
    """The CLI works on every family: clip embeddings (pooled output) and per-time-step frame embeddings."""
    directory = converted_dir(case_name)
    if case_name != "beats_tokenizer_tiny":
        # the 4 s clip is longer than these tiny models' inputs: classify refuses it, a 1 s cut works
        samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
        short = tmp_path / "short.wav"
        soundfile.write(short, samples[:rate], rate)
        assert main(["classify", str(short), "--model", str(directory), "--top-k", "2"]) == 0
        assert len(capsys.readouterr().out.strip().splitlines()) == 3
        clip = short
    else:
        clip = EXAMPLE_CLIP
    frames_file = tmp_path / "frames.safetensors"
    assert main(["embed", str(clip), "--model", str(directory), "--output", str(frames_file), "--level", "frame"]) == 0
    assert load_file(frames_file)["frames_0"].shape[0] == steps
    clip_file = tmp_path / "clip.npy"
    assert main(["embed", str(clip), "--model", str(directory), "--output", str(clip_file)]) == 0
    assert np.load(clip_file).shape == (1, 64)
