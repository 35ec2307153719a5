"""Front ends of the PretrainedSED frame models: waveforms -> `input_values` [B, 1, n_mels, T], as `mel_forward`.

Clips of different lengths are zero-padded to the longest one before the transform (what the original inference
does to the last chunk of a file), so every clip of a batch gets the frames of its padded audio; the sound-event
pipeline cuts the padded time away afterwards. One base class does validation and padding; each subclass is one
original front end, built on the shared transforms in `audiozoo.audio`:

- `AtstFrameFeatureExtractor`: torchaudio mel (64 bins, 1024/160) -> dB with an 80 dB floor -> clamp -> min-max.
- `PasstMelFeatureExtractor`: AugmentMelSTFT (fPaSST periodic window, frame-MobileNet symmetric window).
- `AsitFeatureExtractor`: Kaldi fbank (hanning, 128 bins) of the mean-removed clip, AST statistics.
- `M2dFeatureExtractor`: nnAudio-style Slaney mel (80 bins, 400/160), log(x + eps), fixed statistics.
"""

from __future__ import annotations

import logging

import torch
from transformers import BatchFeature
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from .audio.fbank import KaldiFbank
from .audio.melspec import LogMelSpectrogram, power_to_decibels
from .audio.passt_mel import PasstMelSpectrogram
from .features import check_sampling_rate, check_waveforms, pad_waveforms, split_batch

logger = logging.getLogger(__name__)


class SpectrogramFeatureExtractor(SequenceFeatureExtractor):
    """Validation, zero-padding to the longest clip and output packing; subclasses compute the features."""

    model_input_names = ["input_values"]
    _transform_attribute = "_transform"

    def __init__(self, feature_size: int, sampling_rate: int = 16000, min_samples: int = 1024, **kwargs):
        kwargs.pop("padding_value", None)
        kwargs.pop("return_attention_mask", None)
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=0.0,
                         return_attention_mask=False, **kwargs)
        self.min_samples = min_samples
        self._transform = None

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_transform", None)
        return output

    def build_transform(self) -> torch.nn.Module:
        raise NotImplementedError

    @property
    def transform(self) -> torch.nn.Module:
        if self._transform is None:
            self._transform = self.build_transform()
        return self._transform

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        """[B, N] float32 -> [B, n_mels, T]."""
        raise NotImplementedError

    @staticmethod
    def per_row(transform, waveforms: torch.Tensor) -> torch.Tensor:
        """Apply a row-independent transform; on CPU one clip at a time, since a whole batch's spectra overflow
        the cache (measured 1.2-2.4x slower batched on 16 x 10 s); on GPU in one pass."""
        if waveforms.device.type != "cpu" or waveforms.shape[0] == 1:
            return transform(waveforms)
        return torch.cat([transform(row[None]) for row in waveforms])

    def __call__(self, raw_audio, sampling_rate: int | None = None, return_tensors: str | None = "pt", device=None,
                 **kwargs) -> BatchFeature:
        """Mono float waveforms at `self.sampling_rate` -> `input_values` [B, 1, n_mels, T]."""
        if sampling_rate is None:
            logger.warning("%s was called without sampling_rate; assuming %d Hz.", type(self).__name__, self.sampling_rate)
        check_sampling_rate(sampling_rate, self.sampling_rate, type(self).__name__)
        waveforms = split_batch(raw_audio)
        check_waveforms(waveforms, self.min_samples, self.sampling_rate)
        batch, _ = pad_waveforms(waveforms, 0.0, device)
        self._transform = self.transform.to(batch.device)
        data = {"input_values": self.features(batch).unsqueeze(1)}
        if return_tensors == "np":
            data = {key: value.cpu().numpy() for key, value in data.items()}
        return BatchFeature(data=data)


class AtstFrameFeatureExtractor(SpectrogramFeatureExtractor):
    """ATST-Frame: mel power -> dB (floor: peak - top_db) -> clamp(-50, 80) -> min-max to about [-1, 1].

    `top_db_per_item=True` (default) takes the floor from each clip's own peak, so a clip's features never
    depend on its batch mates (what the original inference script gets, one clip at a time). False reproduces
    the original batched front end, whose floor is the peak of the WHOLE batch (torchaudio reads [B, mels, T]
    as channels of one spectrogram): the features of training/evaluation batches.
    """

    def __init__(self, sampling_rate: int = 16000, n_fft: int = 1024, hop_length: int = 160, n_mels: int = 64,
                 f_min: float = 60.0, f_max: float = 7800.0, top_db: float = 80.0, clamp_min: float = -50.0,
                 clamp_max: float = 80.0, minmax_low: float = -79.6482, minmax_high: float = 50.6842,
                 top_db_per_item: bool = True, **kwargs):
        kwargs.pop("feature_size", None)
        kwargs.setdefault("min_samples", n_fft // 2 + 1)
        super().__init__(feature_size=n_mels, sampling_rate=sampling_rate, **kwargs)
        self.n_fft, self.hop_length, self.n_mels, self.f_min, self.f_max = n_fft, hop_length, n_mels, f_min, f_max
        self.top_db, self.clamp_min, self.clamp_max = top_db, clamp_min, clamp_max
        self.minmax_low, self.minmax_high, self.top_db_per_item = minmax_low, minmax_high, top_db_per_item

    def build_transform(self) -> torch.nn.Module:
        return LogMelSpectrogram(self.sampling_rate, self.n_fft, self.n_fft, self.hop_length, self.f_min, self.f_max,
                                 self.n_mels)

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        power = self.per_row(self.transform.mel_power, waveforms)
        decibels = power_to_decibels(power, self.top_db, self.top_db_per_item)
        decibels = decibels.clamp(self.clamp_min, self.clamp_max)
        return (decibels - self.minmax_low) / (self.minmax_high - self.minmax_low) * 2 - 1


class PasstMelFeatureExtractor(SpectrogramFeatureExtractor):
    """AugmentMelSTFT in eval mode: fPaSST (`periodic_window=True`) and frame-MobileNet (False)."""

    def __init__(self, sampling_rate: int = 16000, n_mels: int = 128, n_fft: int = 512, win_length: int = 400,
                 hop_length: int = 160, f_min: float = 0.0, f_max: float = 7000.0, preemphasis: float = 0.97,
                 periodic_window: bool = True, **kwargs):
        kwargs.pop("feature_size", None)
        kwargs.setdefault("min_samples", n_fft // 2 + 2)
        super().__init__(feature_size=n_mels, sampling_rate=sampling_rate, **kwargs)
        self.n_mels, self.n_fft, self.win_length, self.hop_length = n_mels, n_fft, win_length, hop_length
        self.f_min, self.f_max, self.preemphasis, self.periodic_window = f_min, f_max, preemphasis, periodic_window

    def build_transform(self) -> torch.nn.Module:
        return PasstMelSpectrogram(self.sampling_rate, self.n_mels, self.n_fft, self.win_length, self.hop_length,
                                   self.f_min, self.f_max, self.preemphasis, self.periodic_window)

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.per_row(self.transform, waveforms)


class AsitFeatureExtractor(SpectrogramFeatureExtractor):
    """ASiT: Kaldi fbank (hanning window, 128 bins, no 2**15 scaling) of each mean-removed clip,
    normalised with the AST AudioSet statistics, (x - mean) / (2 std)."""

    def __init__(self, sampling_rate: int = 16000, num_mel_bins: int = 128, window: str = "hanning",
                 mean: float = -4.2677393, std: float = 4.5689974, **kwargs):
        kwargs.pop("feature_size", None)
        kwargs.setdefault("min_samples", int(sampling_rate * 0.025))
        super().__init__(feature_size=num_mel_bins, sampling_rate=sampling_rate, **kwargs)
        self.num_mel_bins, self.window, self.mean, self.std = num_mel_bins, window, mean, std

    def build_transform(self) -> torch.nn.Module:
        return KaldiFbank(self.sampling_rate, self.num_mel_bins, window=self.window, htk_compat=True,
                          subtract_waveform_mean=True)

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        return ((self.transform(waveforms) - self.mean) / (2 * self.std)).transpose(1, 2)


class M2dFeatureExtractor(SpectrogramFeatureExtractor):
    """M2D: Slaney mel with area norm (80 bins, 50-8000 Hz, 400/160), log(x + eps), (x - mean) / std.

    The statistics are the constants the PretrainedSED wrapper hard-codes (-7.1, 4.2), not the checkpoint's.
    """

    def __init__(self, sampling_rate: int = 16000, n_fft: int = 400, hop_length: int = 160, n_mels: int = 80,
                 f_min: float = 50.0, f_max: float = 8000.0, mean: float = -7.1, std: float = 4.2, **kwargs):
        kwargs.pop("feature_size", None)
        kwargs.setdefault("min_samples", n_fft // 2 + 1)
        super().__init__(feature_size=n_mels, sampling_rate=sampling_rate, **kwargs)
        self.n_fft, self.hop_length, self.n_mels, self.f_min, self.f_max = n_fft, hop_length, n_mels, f_min, f_max
        self.mean, self.std = mean, std

    def build_transform(self) -> torch.nn.Module:
        return LogMelSpectrogram(self.sampling_rate, self.n_fft, self.n_fft, self.hop_length, self.f_min, self.f_max,
                                 self.n_mels, mel_scale="slaney", norm="slaney")

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        return (self.per_row(self.transform, waveforms) - self.mean) / self.std


__all__ = [
    "AsitFeatureExtractor",
    "AtstFrameFeatureExtractor",
    "M2dFeatureExtractor",
    "PasstMelFeatureExtractor",
    "SpectrogramFeatureExtractor",
]
