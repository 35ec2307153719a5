"""The batched Kaldi filterbank against the original code's features and an independent float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiozoo.audio.fbank import KaldiFbank

from conftest import load_case

BEATS_MEAN, BEATS_STD = 15.41663, 6.55582


@pytest.mark.parametrize("name", ["beats_tiny_ssl", "beats_tiny_finetuned", "beats_tokenizer_tiny"])
def test_matches_the_original_features(name):
    """BEATs.preprocess = kaldi.fbank(x * 2**15) per row, normalised; computed on the padded batch."""
    case = load_case(name)
    fbank = KaldiFbank(num_mel_bins=128, waveform_scale=2**15)
    features = (fbank(case.inputs["waveforms"]) - BEATS_MEAN) / (2 * BEATS_STD)
    torch.testing.assert_close(features, case.expected["fbank"], **case.tolerance("fbank"))
    # far inside the tolerance in practice: the operations follow the reference's order
    assert (features - case.expected["fbank"]).abs().max() < 1e-5


def test_batch_equals_one_clip_at_a_time():
    rng = np.random.default_rng(0)
    batch = torch.from_numpy(rng.standard_normal((3, 8000)).astype(np.float32)) * 0.1
    fbank = KaldiFbank()
    together = fbank(batch)
    for index in range(3):
        torch.testing.assert_close(together[index], fbank(batch[index])[0], atol=1e-6, rtol=1e-6)


def test_num_frames_and_output_length():
    fbank = KaldiFbank()
    assert fbank.num_frames(400) == 1 and fbank.num_frames(559) == 1 and fbank.num_frames(560) == 2
    assert fbank.num_frames(160000) == 998 and fbank.num_frames(100) == 0
    assert torch.equal(fbank.num_frames(torch.tensor([400, 48000])), torch.tensor([1, 298]))
    assert fbank(torch.zeros(1, 48000)).shape == (1, 298, 128)


def test_silence_hits_the_log_floor():
    features = KaldiFbank()(torch.zeros(1, 1600))
    assert torch.allclose(features, torch.full_like(features, math.log(torch.finfo(torch.float32).eps)))


def test_buffers_can_be_recomputed_after_being_overwritten():
    """transformers refills non-persistent buffers with garbage after a meta-device build."""
    fbank = KaldiFbank()
    signal = torch.randn(1, 4000)
    expected = fbank(signal)
    fbank.window.fill_(1e32)
    fbank.mel_banks.fill_(float("nan"))
    fbank.reset_buffers()
    torch.testing.assert_close(fbank(signal), expected, atol=0, rtol=0)


def test_waveform_mean_is_taken_over_valid_samples_only():
    rng = np.random.default_rng(1)
    short = torch.from_numpy(rng.standard_normal(5000).astype(np.float32)) * 0.1 + 0.3
    long = torch.from_numpy(rng.standard_normal(8000).astype(np.float32)) * 0.1 - 0.2
    padded = torch.zeros(2, 8000)
    padded[0, :5000], padded[1] = short, long
    fbank = KaldiFbank(subtract_waveform_mean=True)
    batched = fbank(padded, lengths=torch.tensor([5000, 8000]))
    alone = fbank(short)[0]
    frames = fbank.num_frames(5000)
    torch.testing.assert_close(batched[0, :frames], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[1], fbank(long)[0], atol=1e-5, rtol=1e-5)


def test_bad_inputs_are_refused():
    fbank = KaldiFbank()
    with pytest.raises(ValueError, match="at least 400"):
        fbank(torch.zeros(1, 399))
    with pytest.raises(ValueError, match=r"\[batch, samples\]"):
        fbank(torch.zeros(1, 1, 1000))
    with pytest.raises(TypeError, match="floating-point"):
        fbank(torch.zeros(1, 1000, dtype=torch.int16))
    with pytest.raises(ValueError, match="dither"):
        KaldiFbank(dither=1.0)
    with pytest.raises(NotImplementedError, match="snip_edges"):
        KaldiFbank(snip_edges=False)
    with pytest.raises(ValueError, match="window"):
        KaldiFbank(window="gaussian")


def reference_fbank(signal: np.ndarray, rate: int, bins: int, window: str, preemphasis: float, remove_dc: bool,
                    low: float, high: float) -> np.ndarray:
    """Kaldi's definitions in float64 numpy, one frame at a time (written from the Kaldi documentation)."""
    length, shift = int(rate * 0.025), int(rate * 0.010)
    fft_size = 1 << (length - 1).bit_length()
    n = np.arange(length)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / (length - 1))
    windows = {"hanning": hann, "povey": hann**0.85, "hamming": 0.54 - 0.46 * np.cos(2 * np.pi * n / (length - 1)),
               "rectangular": np.ones(length)}
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    high = high if high > 0 else rate / 2 + high
    edges = np.linspace(mel(low), mel(high), bins + 2)
    fft_mel = mel(np.arange(fft_size // 2 + 1) * rate / fft_size)
    banks = np.zeros((bins, fft_size // 2 + 1))
    for b in range(bins):
        up = (fft_mel - edges[b]) / (edges[b + 1] - edges[b])
        down = (edges[b + 2] - fft_mel) / (edges[b + 2] - edges[b + 1])
        banks[b] = np.maximum(0.0, np.minimum(up, down))
    banks[:, -1] = 0.0  # Kaldi leaves out the Nyquist bin
    frames = []
    for start in range(0, len(signal) - length + 1, shift):
        frame = signal[start:start + length].astype(np.float64)
        if remove_dc:
            frame = frame - frame.mean()
        frame = frame - preemphasis * np.concatenate([frame[:1], frame[:-1]])
        spectrum = np.abs(np.fft.rfft(frame * windows[window], fft_size)) ** 2
        frames.append(np.log(np.maximum(banks @ spectrum, np.finfo(np.float32).eps)))
    return np.stack(frames)


@pytest.mark.parametrize(
    "options",
    [
        dict(rate=16000, bins=128, window="povey", preemphasis=0.97, remove_dc=True, low=20.0, high=0.0),
        dict(rate=16000, bins=64, window="hanning", preemphasis=0.0, remove_dc=False, low=50.0, high=-400.0),
        dict(rate=8000, bins=40, window="hamming", preemphasis=0.5, remove_dc=True, low=0.0, high=3800.0),
        dict(rate=16000, bins=23, window="rectangular", preemphasis=0.97, remove_dc=True, low=20.0, high=0.0),
    ],
)
def test_matches_an_independent_float64_reference(options):
    """Tolerance: 2e-4 on the log-mel of a real clip; float32 rounding of the spectrum stays below ~1e-4 there."""
    from conftest import EXAMPLE_CLIP
    import soundfile
    import soxr

    samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float64")
    if options["rate"] != rate:
        samples = soxr.resample(samples, rate, options["rate"])
    samples = samples[: options["rate"]]  # one second
    expected = reference_fbank(samples * 32768, **options)
    fbank = KaldiFbank(
        sample_rate=options["rate"], num_mel_bins=options["bins"], window=options["window"],
        preemphasis=options["preemphasis"], remove_dc_offset=options["remove_dc"], low_freq=options["low"],
        high_freq=options["high"], waveform_scale=32768.0,
    )
    actual = fbank(torch.from_numpy(samples.astype(np.float32)))[0].double().numpy()
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=2e-4, rtol=0)
