"""Configuration of frame-PaSST (fPaSST, PretrainedSED)."""

from __future__ import annotations

from ...layers.sed_model import SedEncoderConfig


class FpasstConfig(SedEncoderConfig):
    r"""Configuration of [`FpasstModel`] and [`FpasstForAudioFrameClassification`].

    Defaults are the released model: a DeiT-B (distilled) transformer on a convolutional stem.

    Args:
        num_mel_bins: mel bins of the input (128).
        stem_channels: output channels of the three 3x3 stem convolutions (strides 2, 1, 2).
        patch_channels: channels the stem output is reshaped into before the (num_mel_bins x 2) patch conv.
        max_patches: time positions of the learned table (250 = 10 s); longer inputs are refused (the original
            cuts them silently).
    """

    model_type = "audiozoo-fpasst"

    num_mel_bins: int = 128
    stem_channels: list | None = None
    patch_channels: int = 16
    max_patches: int = 250

    def __post_init__(self, **kwargs):
        if self.stem_channels is None:
            self.stem_channels = [16, 32, 64]
        super().__post_init__(**kwargs)


__all__ = ["FpasstConfig"]
