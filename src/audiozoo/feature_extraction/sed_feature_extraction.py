"""The shared base of the PretrainedSED front ends: waveforms -> `input_values` [B, 1, n_mels, T], as `mel_forward`.

Clips of different lengths are zero-padded to the longest one before the transform (what the original inference
does to the last chunk of a file), so every clip of a batch gets the frames of its padded audio; the sound-event
pipeline cuts the padded time away afterwards. This base class does validation and padding; each family's
`feature_extraction_<family>.py` is one original front end, built on the shared transforms in `audiozoo.audio`:

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

from ..audio.fbank import num_rows_and_samples, row_samples
from ..layers.remote_code_saving import RemoteCodeSavingMixin
from .features import check_sampling_rate, float32_front_end, prepare_input

logger = logging.getLogger(__name__)


class SpectrogramFeatureExtractor(RemoteCodeSavingMixin, SequenceFeatureExtractor):
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

    @property
    def minimum_samples(self) -> int:
        """The shortest clip (samples at `sampling_rate`) the front end and model take (`min_samples` unless a
        family's model needs more frames than its transform); shorter clips are refused here and, with the file
        named, by the sound-event-detection pipeline."""
        return self.min_samples

    def build_transform(self) -> torch.nn.Module:
        raise NotImplementedError

    @property
    def transform(self) -> torch.nn.Module:
        if self._transform is None:
            self._transform = self.build_transform()
        return self._transform

    def features(self, waveforms: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """[B, N] float32 (on the device asked for), or on CPU the list of 1-D clips of `prepare_waveforms` (rows
        right-padded with zeros to the longest) -> [B, n_mels, T]."""
        raise NotImplementedError

    @staticmethod
    def per_row(transform, waveforms: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """Apply a row-independent transform to a [B, N] batch or to `prepare_waveforms`' clips (rows padded with
        zeros to the longest); on CPU one clip at a time, since a whole batch's spectra overflow the cache
        (measured 1.2-2.4x slower batched on 16 x 10 s); on GPU in one pass."""
        if isinstance(waveforms, torch.Tensor) and (waveforms.device.type != "cpu" or waveforms.shape[0] == 1):
            return transform(waveforms)
        batch, num_samples = num_rows_and_samples(waveforms)
        output = None
        for index in range(batch):
            row = transform(row_samples(waveforms, slice(index, index + 1), 0, num_samples))
            if output is None:
                output = row.new_empty((batch,) + row.shape[1:])
            output[index : index + 1] = row
        return output

    @float32_front_end
    def __call__(self, raw_audio, sampling_rate: int | None = None, return_tensors: str | None = "pt", device=None,
                 **kwargs) -> BatchFeature:
        """Mono float waveforms at `self.sampling_rate` -> `input_values` [B, 1, n_mels, T]."""
        if sampling_rate is None:
            logger.warning("%s was called without sampling_rate; assuming %d Hz.", type(self).__name__, self.sampling_rate)
        check_sampling_rate(sampling_rate, self.sampling_rate, type(self).__name__)
        waveforms, lengths = prepare_input(raw_audio, self.minimum_samples, self.sampling_rate, device=device)
        self._transform = self.transform.to(lengths.device)
        data = {"input_values": self.features(waveforms).unsqueeze(1)}
        if return_tensors == "np":
            data = {key: value.cpu().numpy() for key, value in data.items()}
        return BatchFeature(data=data)


__all__ = ["SpectrogramFeatureExtractor"]
