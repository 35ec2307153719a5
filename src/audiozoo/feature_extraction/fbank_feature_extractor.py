"""Feature extractor base for the Kaldi-filterbank models (BEATs, AST, EAT, ...): written once, configured per family.

Waveforms -> optional per-clip mean removal and scaling -> batched Kaldi fbank -> optional pad/cut to a fixed
number of frames in the log domain -> `(x - mean) / (norm_std_factor * std)` -> `input_values` [B, T, mel],
plus a frame `attention_mask` for variable-length models. (The normalisation runs inside the filterbank, chunk by
chunk while each is in cache, and padding frames get the normalised 0.0: the same numbers as in this order.)
"""

from __future__ import annotations

import logging

import torch
from transformers import BatchFeature
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from ..audio.fbank import KaldiFbank
from .features import check_sampling_rate, float32_front_end, prepare_input
from ..layers.masking import lengths_to_valid_mask, reduce_valid_mask_by_chunks
from ..layers.remote_code_saving import RemoteCodeSavingMixin

logger = logging.getLogger(__name__)


class KaldiFbankFeatureExtractor(RemoteCodeSavingMixin, SequenceFeatureExtractor):
    """Batched Kaldi-filterbank front end shared by the spectrogram models.

    Args:
        sampling_rate: the model's rate; other rates are refused.
        num_mel_bins, frame_length_ms, frame_shift_ms, window: Kaldi filterbank options.
        waveform_scale: samples are multiplied by this (2**15 for BEATs).
        subtract_waveform_mean: remove each clip's mean first (AST, EAT).
        mean, std, norm_std_factor: normalisation `(x - mean) / (norm_std_factor * std)`.
        max_length: fixed number of frames (AST): shorter clips are padded with 0.0 in the log domain before
            normalisation, as the originals do; longer ones are refused unless `truncation=True` is passed.
            None: any length, with a frame `attention_mask` when lengths differ.
        min_frames: frames needed for one patch; shorter clips are refused.
        padding_mask_rule: "original" (a frame is padding only if its whole chunk of samples is, as the fairseq
            code reduces the sample mask) or "exact" (a frame is audio only if its window lies inside the clip).
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        window: str = "povey",
        waveform_scale: float = 1.0,
        subtract_waveform_mean: bool = False,
        mean: float = 0.0,
        std: float = 0.5,
        norm_std_factor: float = 2.0,
        max_length: int | None = None,
        min_frames: int = 16,
        padding_mask_rule: str = "original",
        padding_value: float = 0.0,
        return_attention_mask: bool = False,
        **kwargs,
    ):
        kwargs.pop("feature_size", None)  # saved by the base class; always num_mel_bins here
        super().__init__(
            feature_size=num_mel_bins,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        if padding_mask_rule not in ("original", "exact"):
            raise ValueError(f"padding_mask_rule must be 'original' or 'exact', got {padding_mask_rule!r}")
        self.num_mel_bins = num_mel_bins
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.window = window
        self.waveform_scale = waveform_scale
        self.subtract_waveform_mean = subtract_waveform_mean
        self.mean = mean
        self.std = std
        self.norm_std_factor = norm_std_factor
        self.max_length = max_length
        self.min_frames = min_frames
        self.padding_mask_rule = padding_mask_rule
        self._fbank: KaldiFbank | None = None

    @property
    def fbank(self) -> KaldiFbank:
        if self._fbank is None:
            self._fbank = KaldiFbank(
                sample_rate=self.sampling_rate,
                num_mel_bins=self.num_mel_bins,
                frame_length_ms=self.frame_length_ms,
                frame_shift_ms=self.frame_shift_ms,
                window=self.window,
                waveform_scale=self.waveform_scale,
                subtract_waveform_mean=self.subtract_waveform_mean,
            )
        return self._fbank

    @property
    def min_samples(self) -> int:
        """Samples needed for `min_frames` frames."""
        return self.fbank.frame_length + (self.min_frames - 1) * self.fbank.frame_shift

    @property
    def minimum_samples(self) -> int:
        """The shortest clip (samples at `sampling_rate`) the front end and model take: `min_frames` filterbank
        frames (one patch for BEATs; one frame for AST / EAT, whose input is padded to `max_length`). Shorter
        clips are refused here and, with the file named, by the pipelines."""
        return self.min_samples

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_fbank", None)
        return output

    def frame_mask(self, lengths: torch.Tensor, num_samples: int, num_frames: int) -> torch.Tensor:
        """[B] clip lengths -> [B, T] frame mask under `padding_mask_rule`."""
        if self.padding_mask_rule == "original":
            return reduce_valid_mask_by_chunks(lengths_to_valid_mask(lengths, num_samples), num_frames)
        return lengths_to_valid_mask(self.fbank.num_frames(lengths), num_frames)

    def _fixed_length(
        self, features: torch.Tensor, lengths: torch.Tensor, truncation: bool, fill: float = 0.0
    ) -> torch.Tensor:
        """Each clip's own frames, then 0.0 (log domain; `fill` = its normalised value when `features` are
        normalised already) up to `max_length`; the originals pad this way."""
        own_frames = self.fbank.num_frames(lengths)
        longest = int(own_frames.max())
        if longest > self.max_length and not truncation:
            seconds = (int(lengths.max()) / self.sampling_rate)
            raise ValueError(
                f"a clip has {longest} frames ({seconds:.2f} s); this model takes at most {self.max_length} frames "
                f"({(self.max_length - 1) * self.frame_shift_ms / 1000 + self.frame_length_ms / 1000:.2f} s). Pass "
                "truncation=True to keep the first frames as the original does, or cut the audio into windows."
            )
        valid = lengths_to_valid_mask(own_frames, features.shape[1]).unsqueeze(-1)
        if not bool(valid.all()):
            features = features.masked_fill(~valid, fill)
        if features.shape[1] >= self.max_length:
            return features[:, : self.max_length].contiguous()
        return torch.nn.functional.pad(features, (0, 0, 0, self.max_length - features.shape[1]), value=fill)

    @float32_front_end
    def __call__(
        self,
        raw_audio,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        return_attention_mask: bool | None = None,
        truncation: bool = False,
        do_normalize: bool = True,
        device: str | torch.device | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            raw_audio: a mono float waveform, a list of them (any lengths), or a 2-D [batch, samples] array.
            sampling_rate: rate of `raw_audio`; must equal `self.sampling_rate` (checked when given).
            return_tensors: "pt" (default) or "np".
            return_attention_mask: force or suppress the frame mask; default: only if lengths differ (never for
                fixed-length models, which attend to every frame as the originals do).
            truncation: for fixed-length models, keep the first `max_length` frames of longer clips.
            do_normalize: False returns the log-mel filterbank before normalisation.
            device: compute the features on this device (e.g. "cuda").
        """
        if sampling_rate is None:
            logger.warning(
                "%s was called without sampling_rate; assuming %d Hz. Pass sampling_rate to have it checked.",
                type(self).__name__,
                self.sampling_rate,
            )
        check_sampling_rate(sampling_rate, self.sampling_rate, type(self).__name__)
        waveforms, lengths = prepare_input(raw_audio, self.minimum_samples, self.sampling_rate, self.padding_value,
                                           device)
        num_samples = int(lengths.max())

        fbank = self.fbank.to(lengths.device)
        # normalised chunk by chunk inside the filterbank, while each chunk is in cache
        divisor = self.norm_std_factor * self.std
        features = fbank(waveforms, lengths, normalize=(self.mean, divisor) if do_normalize else None)
        data = {}
        if self.max_length is not None:
            # padding frames are 0.0 in the log domain, i.e. (0.0 - mean) / divisor once normalised
            fill = float(features.new_zeros(()).sub_(self.mean).div_(divisor)) if do_normalize else 0.0
            features = self._fixed_length(features, lengths, truncation, fill)
        else:
            uneven = bool((lengths != lengths.max()).any())
            wants_mask = return_attention_mask if return_attention_mask is not None else uneven
            if wants_mask or self.return_attention_mask and return_attention_mask is None:
                data["attention_mask"] = self.frame_mask(lengths, num_samples, features.shape[1]).long()
        data = {"input_values": features, **data}
        if return_tensors == "np":
            data = {key: value.cpu().numpy() for key, value in data.items()}
        elif return_tensors not in ("pt", None):
            raise ValueError(f"return_tensors must be 'pt' or 'np', got {return_tensors!r}")
        return BatchFeature(data=data)


class FixedLengthFbankFeatureExtractor(KaldiFbankFeatureExtractor):
    """The AST / EAT front end: per-clip mean removal, hanning window, `max_length` frames, recipe presets.

    Subclasses set `PRESETS` (dataset -> mean, std, max_length); unspecified values come from "audioset".
    """

    PRESETS: dict[str, dict[str, float | int]] = {}

    def __init__(self, mean: float | None = None, std: float | None = None, max_length: int | None = None, **kwargs):
        default = self.PRESETS.get("audioset", {})
        kwargs.setdefault("window", "hanning")
        kwargs.setdefault("subtract_waveform_mean", True)
        kwargs.setdefault("min_frames", 1)
        super().__init__(
            mean=default.get("mean", 0.0) if mean is None else mean,
            std=default.get("std", 0.5) if std is None else std,
            max_length=int(default.get("max_length", 1024)) if max_length is None else max_length,
            **kwargs,
        )

    @classmethod
    def from_preset(cls, dataset: str, **overrides):
        """The front end of a released recipe, e.g. "audioset", "esc50" or "speechcommands"."""
        if dataset not in cls.PRESETS:
            raise ValueError(f"unknown {cls.__name__} preset {dataset!r}; expected one of {sorted(cls.PRESETS)}")
        return cls(**{**cls.PRESETS[dataset], **overrides})
