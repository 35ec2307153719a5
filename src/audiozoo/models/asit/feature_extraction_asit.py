"""ASiT's front end: waveforms -> `input_values` [B, 1, n_mels, T] (validation and padding in the shared base)."""

from __future__ import annotations

import torch

from ...audio.fbank import KaldiFbank
from ...feature_extraction.sed_feature_extraction import SpectrogramFeatureExtractor


class AsitFeatureExtractor(SpectrogramFeatureExtractor):
    """ASiT: Kaldi fbank (hanning window, 128 bins, no 2**15 scaling) of each mean-removed clip,
    normalised with the AST AudioSet statistics, (x - mean) / (2 std)."""

    PATCH_FRAMES = 16  # the model's patches are 16 frames wide

    def __init__(self, sampling_rate: int = 16000, num_mel_bins: int = 128, window: str = "hanning",
                 mean: float = -4.2677393, std: float = 4.5689974, **kwargs):
        kwargs.pop("feature_size", None)
        # one 16 x 16 patch: 16 frames of 25 ms, 10 ms apart (0.175 s); ASiT refuses fewer frames
        frame_length, frame_shift = int(sampling_rate * 0.025), int(sampling_rate * 0.01)
        kwargs.setdefault("min_samples", frame_length + (self.PATCH_FRAMES - 1) * frame_shift)
        super().__init__(feature_size=num_mel_bins, sampling_rate=sampling_rate, **kwargs)
        self.num_mel_bins, self.window, self.mean, self.std = num_mel_bins, window, mean, std

    @property
    def minimum_samples(self) -> int:
        """One patch of frames (folders saved with the older one-frame `min_samples` get this too)."""
        return max(self.min_samples, self.transform.frame_length + (self.PATCH_FRAMES - 1) * self.transform.frame_shift)

    def build_transform(self) -> torch.nn.Module:
        return KaldiFbank(self.sampling_rate, self.num_mel_bins, window=self.window, htk_compat=True,
                          subtract_waveform_mean=True)

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        # normalised chunk by chunk inside the filterbank (the same operations as afterwards)
        return self.transform(waveforms, normalize=(self.mean, 2 * self.std)).transpose(1, 2)


__all__ = ["AsitFeatureExtractor"]
