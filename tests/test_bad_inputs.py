"""Bad input gets a clear error that names the problem and what was expected; nothing is silently changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline

from audiozoo import BeatsFeatureExtractor
from audiozoo.audio.io import AudioDecodeError


@pytest.fixture(scope="module")
def fe() -> BeatsFeatureExtractor:
    return BeatsFeatureExtractor()


def one_second() -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)


def test_wrong_sampling_rate_is_refused(fe):
    with pytest.raises(ValueError, match=r"expects audio sampled at 16000 Hz, got sampling_rate=44100"):
        fe(one_second(), sampling_rate=44100)


def test_stereo_item_is_refused(fe):
    stereo = np.stack([one_second(), one_second()], axis=1)
    with pytest.raises(ValueError, match=r"expected a mono 1-D waveform, got shape \(16000, 2\)"):
        fe([stereo], sampling_rate=16000)
    # a 2-D array is a batch [batch, samples]; [samples, 2] then fails as too short, and says why
    with pytest.raises(ValueError, match="down-mix stereo first"):
        fe(stereo, sampling_rate=16000)


def test_integer_pcm_is_refused_by_the_feature_extractor(fe):
    with pytest.raises(TypeError, match=r"expected floating-point samples.*int16.*to_float32"):
        fe((one_second() * 32767).astype(np.int16), sampling_rate=16000)


def test_empty_and_too_short_audio(fe):
    with pytest.raises(ValueError, match="waveform 0 is empty"):
        fe(np.zeros(0, dtype=np.float32), sampling_rate=16000)
    with pytest.raises(ValueError, match=r"has 2799 samples .* at least 2800 samples"):
        fe(np.zeros(2799, dtype=np.float32), sampling_rate=16000)
    with pytest.raises(ValueError, match="empty list"):
        fe([], sampling_rate=16000)
    assert fe(np.zeros(2800, dtype=np.float32), sampling_rate=16000)["input_values"].shape == (1, 16, 128)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(fe, bad):
    audio = one_second()
    audio[1234] = bad
    with pytest.raises(ValueError, match=r"waveform 0 has 1 NaN/Inf samples \(first at sample 1234\)"):
        fe(audio, sampling_rate=16000)


def test_unsupported_input_types(fe):
    with pytest.raises(TypeError, match="expected a numpy array or torch tensor, got str"):
        fe(["clip.wav"], sampling_rate=16000)
    with pytest.raises(ValueError, match="shape"):
        fe(np.zeros((1, 2, 16000), dtype=np.float32), sampling_rate=16000)


def test_float64_and_tensor_inputs_are_accepted(fe):
    audio = one_second()
    reference = fe(audio, sampling_rate=16000)["input_values"]
    torch.testing.assert_close(fe(audio.astype(np.float64), sampling_rate=16000)["input_values"], reference)
    torch.testing.assert_close(fe(torch.from_numpy(audio), sampling_rate=16000)["input_values"], reference)


def test_pipeline_reports_corrupt_and_missing_files(converted_dir, tmp_path):
    classify = pipeline("audio-classification", model=converted_dir("beats_tiny_finetuned"), dtype=torch.float32)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" + bytes(100))
    with pytest.raises(AudioDecodeError, match="corrupt.wav"):
        classify(str(corrupt))
    with pytest.raises(FileNotFoundError, match="absent.wav"):
        classify(str(tmp_path / "absent.wav"))
    with pytest.raises(ValueError, match="'array' \\(or 'raw'\\) samples and their 'sampling_rate'"):
        classify({"array": one_second()})
    with pytest.raises(ValueError, match="NaN/Inf"):
        classify(np.full(16000, np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="at least 2800 samples"):
        classify(np.zeros(100, dtype=np.float32))
