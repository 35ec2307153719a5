"""The faster front-end paths of issue 15 give the numbers of the previous ones.

Per-clip spectrograms on CPU (BYOL-A, the SED front ends), the filterbank's per-chunk scaling and in-filterbank
normalisation, in-place post-processing, and the one-reduction NaN/Inf check: each is compared with the previous
computation, written out here, on clips of different lengths. Equal means bit for bit (torch.equal).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiozoo.audio.fbank import KaldiFbank
from audiozoo.audio.melspec import LogMelSpectrogram, centred_power_spectrogram
from audiozoo.feature_extraction.features import pad_waveforms, prepare_batch, split_batch
from audiozoo.layers.masking import lengths_to_valid_mask
from audiozoo.models.asit.feature_extraction_asit import AsitFeatureExtractor
from audiozoo.models.ast.feature_extraction_ast import AstFeatureExtractor
from audiozoo.models.atst_frame.feature_extraction_atst_frame import AtstFrameFeatureExtractor
from audiozoo.models.beats.feature_extraction_beats import BeatsFeatureExtractor
from audiozoo.models.byol_a.feature_extraction_byol_a import ByolAFeatureExtractor
from audiozoo.models.fpasst.feature_extraction_fpasst import PasstMelFeatureExtractor
from audiozoo.models.m2d.feature_extraction_m2d import M2dFeatureExtractor


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request):
    previous = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(previous)


def clips(*seconds: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in seconds]


UNEVEN = (2.0, 1.3, 0.7, 2.0)


def padded(waveforms: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    return pad_waveforms(split_batch(waveforms))


# ---- the previous computations --------------------------------------------------------------------------------

def previous_log_mel(melspec: LogMelSpectrogram, batch: torch.Tensor, lengths) -> torch.Tensor:
    """One reflect-padded STFT and one mel matmul for the whole batch."""
    power = centred_power_spectrogram(batch, lengths, melspec.n_fft, melspec.hop_length, melspec.win_length,
                                      melspec.window)
    mel = torch.matmul(power.transpose(-1, -2), melspec.filters).transpose(-1, -2)
    return (mel + melspec.log_offset).log()


def previous_fbank(fbank: KaldiFbank, batch: torch.Tensor, lengths=None) -> torch.Tensor:
    """The whole batch scaled and mean-removed first, then the frames of each chunk."""
    waveforms = batch * fbank.waveform_scale if fbank.waveform_scale != 1.0 else batch
    if fbank.subtract_waveform_mean:
        if lengths is None:
            waveforms = waveforms - waveforms.mean(dim=1, keepdim=True)
        else:
            valid = torch.arange(waveforms.shape[1])[None, :] < lengths[:, None]
            means = (waveforms * valid).sum(dim=1, keepdim=True) / lengths.clamp(min=1)[:, None].to(waveforms.dtype)
            waveforms = torch.where(valid, waveforms - means, torch.zeros_like(waveforms))
    frames = waveforms.unfold(1, fbank.frame_length, fbank.frame_shift)
    batch_size, num_frames = frames.shape[:2]
    time_step = min(num_frames, fbank.CPU_CHUNK_FRAMES)
    row_step = max(1, fbank.CPU_CHUNK_FRAMES // time_step)
    output = waveforms.new_empty(batch_size, num_frames, fbank.num_mel_bins)
    for row in range(0, batch_size, row_step):
        for start in range(0, num_frames, time_step):
            chunk = frames[row : row + row_step, start : start + time_step]
            output[row : row + row_step, start : start + time_step] = fbank._log_mel(chunk)
    return output


# ---- transforms -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_log_mel_one_clip_at_a_time_equals_the_whole_batch_stft(scale, threads):
    melspec = LogMelSpectrogram(16000, 1024, 1024, 160, 60.0, 7800.0, 64, mel_scale=scale,
                                norm="slaney" if scale == "slaney" else None)
    batch, lengths = padded(clips(*UNEVEN))
    assert torch.equal(melspec(batch, lengths), previous_log_mel(melspec, batch, lengths))
    assert torch.equal(melspec(batch), previous_log_mel(melspec, batch, None))
    # a single row takes the direct path: the same numbers as that row of the batch
    assert torch.equal(melspec(batch[1:2], lengths[1:2])[0], melspec(batch, lengths)[1])


@pytest.mark.parametrize("options", [
    {"waveform_scale": 32768.0},  # BEATs
    {"window": "hanning", "subtract_waveform_mean": True},  # AST, EAT, ASiT
    {"window": "hanning", "subtract_waveform_mean": True, "waveform_scale": 3.0},
    {"window": "hamming", "preemphasis": 0.0, "remove_dc_offset": False},
])
@pytest.mark.parametrize("seconds", [UNEVEN, (12.0, 7.5), (0.4,) * 24], ids=["uneven", "long", "many-short"])
def test_filterbank_chunks_equal_the_whole_batch_steps(options, seconds, threads):
    """Scaling and mean removal per chunk (long clips: several chunks per clip; short ones: several clips per
    chunk), with and without lengths, and the normalisation inside the filterbank."""
    fbank = KaldiFbank(**options)
    batch, lengths = padded(clips(*seconds))
    for given in (None, lengths):
        expected = previous_fbank(fbank, batch, given)
        assert torch.equal(fbank(batch, given), expected)
        assert torch.equal(fbank(batch, given, normalize=(15.41663, 2 * 6.55582)), (expected - 15.41663) / (2 * 6.55582))


def test_transforms_take_the_clips_without_a_padded_batch(threads):
    """A list of 1-D clips reads as the zero-padded batch (the front ends pass their clips so on CPU)."""
    waveforms = [torch.from_numpy(clip) for clip in clips(*UNEVEN)]
    batch, lengths = padded(clips(*UNEVEN))
    for options in ({"waveform_scale": 32768.0}, {"window": "hanning", "subtract_waveform_mean": True}):
        fbank = KaldiFbank(**options)
        assert torch.equal(fbank(waveforms, lengths), fbank(batch, lengths))
        assert torch.equal(fbank(waveforms), fbank(batch))
    short = [torch.from_numpy(clip) for clip in clips(0.4, 0.3, 0.45)]
    assert torch.equal(KaldiFbank()(short), KaldiFbank()(padded(clips(0.4, 0.3, 0.45))[0]))  # several clips a chunk
    melspec = LogMelSpectrogram(n_mels=64)
    assert torch.equal(melspec(waveforms, lengths), melspec(batch, lengths))
    assert torch.equal(melspec(waveforms), melspec(batch))
    passt = PasstMelFeatureExtractor()
    assert torch.equal(passt.per_row(passt.transform, waveforms), passt.per_row(passt.transform, batch))


# ---- feature extractors ---------------------------------------------------------------------------------------

def test_fbank_extractors_equal_the_previous_formulas():
    waveforms = clips(*UNEVEN)
    batch, lengths = padded(waveforms)
    beats = BeatsFeatureExtractor()
    expected = (previous_fbank(beats.fbank, batch) - beats.mean) / (beats.norm_std_factor * beats.std)
    out = beats(waveforms, sampling_rate=16000)
    assert torch.equal(out["input_values"], expected)
    assert torch.equal(out["attention_mask"], beats.frame_mask(lengths, batch.shape[1], expected.shape[1]).long())
    assert torch.equal(beats(waveforms, sampling_rate=16000, do_normalize=False)["input_values"],
                       previous_fbank(beats.fbank, batch))

    # fixed length: each clip's own frames, 0.0 (log domain) after them, normalised afterwards
    for max_length, truncation in ((300, False), (150, True)):
        ast = AstFeatureExtractor(max_length=max_length)
        features = previous_fbank(ast.fbank, batch, lengths)
        own = lengths_to_valid_mask(ast.fbank.num_frames(lengths), features.shape[1]).unsqueeze(-1)
        features = features * own
        features = features[:, :max_length] if features.shape[1] >= max_length else torch.nn.functional.pad(
            features, (0, 0, 0, max_length - features.shape[1]))
        out = ast(waveforms, sampling_rate=16000, truncation=truncation)["input_values"]
        assert out.is_contiguous() and torch.equal(out, (features - ast.mean) / (2 * ast.std))
        assert torch.equal(ast(waveforms, sampling_rate=16000, truncation=truncation, do_normalize=False)
                           ["input_values"], features)


def test_byol_a_equals_the_previous_formula(threads):
    waveforms = clips(*UNEVEN)
    batch, lengths = padded(waveforms)
    for version in (1, 2):
        fe = ByolAFeatureExtractor.for_version(version)
        log_mel = previous_log_mel(fe.melspec, batch, lengths)
        valid = lengths_to_valid_mask(fe.melspec.num_frames(lengths), log_mel.shape[-1])
        out = fe(waveforms, sampling_rate=16000)
        assert torch.equal(out["input_values"], (((log_mel - fe.mean) / fe.std) * valid.unsqueeze(1)).unsqueeze(1))
        assert torch.equal(out["attention_mask"], valid.long())
        assert torch.equal(fe.log_mel(waveforms, 16000)[0], log_mel)
        even = fe(waveforms[:1] * 2, sampling_rate=16000)["input_values"]  # no padding: no mask multiplication
        assert torch.equal(even, ((previous_log_mel(fe.melspec, padded(waveforms[:1] * 2)[0], None) - fe.mean)
                                  / fe.std).unsqueeze(1))


def test_sed_front_ends_equal_the_previous_formulas(threads):
    waveforms = clips(*UNEVEN)
    batch, _ = padded(waveforms)

    def atst_previous(fe, per_item):
        power = torch.cat([fe.transform.mel_power(row[None]) for row in batch])
        decibels = 10.0 * torch.log10(power.clamp(min=1e-10))
        peak = decibels.reshape(len(batch), -1).amax(dim=1)[:, None, None] if per_item else decibels.amax()
        decibels = torch.max(decibels, peak - fe.top_db).clamp(fe.clamp_min, fe.clamp_max)
        return (decibels - fe.minmax_low) / (fe.minmax_high - fe.minmax_low) * 2 - 1

    cases = []
    for per_item in (True, False):
        atst = AtstFrameFeatureExtractor(top_db_per_item=per_item)
        cases.append((atst, atst_previous(atst, per_item)))
    passt = PasstMelFeatureExtractor()
    cases.append((passt, torch.cat([passt.transform(row[None]) for row in batch])))
    m2d = M2dFeatureExtractor()
    cases.append((m2d, (torch.cat([m2d.transform(row[None]) for row in batch]) - m2d.mean) / m2d.std))
    asit = AsitFeatureExtractor()
    cases.append((asit, ((previous_fbank(asit.transform, batch) - asit.mean) / (2 * asit.std)).transpose(1, 2)))
    for fe, expected in cases:
        out = fe(waveforms, sampling_rate=16000)["input_values"]
        assert torch.equal(out, expected.unsqueeze(1)), type(fe).__name__


# ---- validation -----------------------------------------------------------------------------------------------

def test_one_reduction_check_still_names_the_bad_clip():
    waveforms = clips(0.5, 0.5, 0.3)
    batch, lengths = prepare_batch(waveforms, 400, 16000)
    assert torch.equal(batch, padded(waveforms)[0]) and lengths.tolist() == [8000, 8000, 4800]
    for bad, name in ((float("nan"), "NaN"), (float("inf"), "Inf"), (-float("inf"), "-Inf")):
        broken = [clip.copy() for clip in waveforms]
        broken[2][1234] = bad
        with pytest.raises(ValueError, match=r"waveform 2 has 1 NaN/Inf samples \(first at sample 1234\)"):
            prepare_batch(broken, 400, 16000)
        with pytest.raises(ValueError, match="waveform 2 has 1 NaN/Inf"):
            BeatsFeatureExtractor()(broken, sampling_rate=16000)
    # +Inf and -Inf in one clip sum to NaN; finite samples whose sum overflows are accepted (the exact scan runs)
    broken = [clip.copy() for clip in waveforms]
    broken[0][[10, 20]] = [np.inf, -np.inf]
    with pytest.raises(ValueError, match=r"waveform 0 has 2 NaN/Inf samples \(first at sample 10\)"):
        prepare_batch(broken, 400, 16000)
    huge = np.full(4000, 3e38, dtype=np.float32)
    with np.errstate(over="ignore"):
        assert not np.isfinite(huge.sum(dtype=np.float32))
    batch, _ = prepare_batch([huge, -huge], 400, 16000)
    assert torch.isfinite(batch).all()
    with pytest.raises(ValueError, match="waveform 1 has 300 samples"):
        prepare_batch([huge, huge[:300]], 400, 16000)


def test_padding_keeps_its_value_dtype_and_device():
    waveforms = [np.ones(5, dtype=np.float64), np.ones(3, dtype=np.float32)]
    batch, lengths = pad_waveforms(split_batch(waveforms), padding_value=-1.0)
    assert batch.dtype == torch.float32 and batch.tolist() == [[1.0] * 5, [1.0] * 3 + [-1.0] * 2]
    assert lengths.tolist() == [5, 3]
    same = [torch.arange(4.0), torch.arange(4.0) + 1]
    batch, _ = pad_waveforms(same)
    assert torch.equal(batch, torch.stack(same)) and batch.data_ptr() != same[0].data_ptr()
