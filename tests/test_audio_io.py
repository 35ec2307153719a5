"""Loading, converting, down-mixing and resampling audio for the CLI and pipelines."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import soxr

from audiozoo.audio import AudioDecodeError, load_audio, resample, to_float32, to_mono
from audiozoo.pipelines import decode_audio_input

from conftest import EXAMPLE_CLIP


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    assert rate == 16000
    return samples


@pytest.mark.parametrize("suffix,subtype", [(".wav", "PCM_16"), (".flac", "PCM_16"), (".ogg", "VORBIS")])
def test_stereo_file_is_downmixed_and_resampled(tmp_path, clip, suffix, subtype):
    at_44k = soxr.resample(clip, 16000, 44100, "HQ")
    stereo = np.stack([at_44k, 0.5 * at_44k], axis=1)
    path = tmp_path / f"stereo{suffix}"
    soundfile.write(path, stereo, 44100, subtype=subtype)

    samples, rate = load_audio(path, sampling_rate=16000)
    assert rate == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - round(len(at_44k) * 16000 / 44100)) <= 1
    decoded, _ = soundfile.read(path, dtype="float32")
    expected = soxr.resample(decoded.mean(axis=1), 44100, 16000, "HQ")
    np.testing.assert_allclose(samples, expected[: len(samples)], atol=1e-6)
    # and close to the clip itself (0.75 x after averaging the channels); the 16k -> 44.1k -> 16k round trip
    # loses a little near Nyquist, Vorbis more
    n = min(len(samples), len(clip))
    error = samples[1000:n - 1000] - 0.75 * clip[1000:n - 1000]
    relative_rms = np.sqrt(np.mean(error**2) / np.mean((0.75 * clip[1000:n - 1000]) ** 2))
    assert relative_rms < (0.05 if subtype == "PCM_16" else 0.3)

    both, rate = load_audio(path, mono=False)
    assert rate == 44100 and both.shape[1] == 2


def test_corrupt_and_missing_files(tmp_path):
    corrupt = tmp_path / "noise.wav"
    corrupt.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(AudioDecodeError, match=r"could not decode .*noise.wav.*libsndfile"):
        load_audio(corrupt)
    with pytest.raises(FileNotFoundError, match="absent.flac"):
        load_audio(tmp_path / "absent.flac")
    with pytest.raises(AudioDecodeError, match="could not decode the given bytes"):
        decode_audio_input(b"not audio at all", 16000)


def test_integer_pcm_conversion():
    np.testing.assert_array_equal(to_float32(np.array([-32768, 0, 16384], dtype=np.int16)), [-1.0, 0.0, 0.5])
    np.testing.assert_allclose(to_float32(np.array([-(2**31), 2**30], dtype=np.int32)), [-1.0, 0.5])
    np.testing.assert_array_equal(to_float32(np.array([0, 128, 192], dtype=np.uint8)), [-1.0, 0.0, 0.5])
    assert to_float32(np.zeros(3, dtype=np.float64)).dtype == np.float32
    with pytest.raises(TypeError, match="dtype complex64"):
        to_float32(np.zeros(3, dtype=np.complex64))


def test_downmix_and_resample_helpers(clip):
    stereo = np.stack([clip, -clip], axis=1)
    assert np.allclose(to_mono(stereo), 0.0)
    assert to_mono(clip) is clip
    with pytest.raises(ValueError, match="shape"):
        to_mono(np.zeros((2, 2, 2)))
    assert len(resample(clip, 16000, 8000)) == len(clip) // 2
    with pytest.raises(ValueError, match="positive"):
        resample(clip, 0, 16000)


def test_decode_audio_input_layouts(clip):
    """Arrays may be [samples, channels] or [channels, samples]: the shorter axis is the channel axis."""
    for layout in (np.stack([clip, clip], axis=1), np.stack([clip, clip], axis=0)):
        np.testing.assert_allclose(decode_audio_input(layout, 16000), clip, atol=1e-7)
    int16 = (clip * 32767).astype(np.int16)
    np.testing.assert_allclose(decode_audio_input(int16, 16000), clip, atol=1e-4)
    resampled = decode_audio_input({"array": clip, "sampling_rate": 16000}, 8000)
    assert len(resampled) == len(clip) // 2
    with pytest.raises(ValueError, match="URLs are not fetched"):
        decode_audio_input("https://example.org/a.wav", 16000)
    with pytest.raises(TypeError, match="cannot read audio from a int"):
        decode_audio_input(3, 16000)
