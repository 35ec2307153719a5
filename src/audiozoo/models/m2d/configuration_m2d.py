"""Configuration of M2D (Niizumi et al.) as used by PretrainedSED (portable_m2d, stacked frame features)."""

from __future__ import annotations

from ...layers.sed_model import SedEncoderConfig


class M2dConfig(SedEncoderConfig):
    r"""Configuration of [`M2dModel`] and [`M2dForAudioFrameClassification`].

    Defaults are the released model (m2d_clap_vit_base-80x1001p16x16, fine-tuned on AudioSet by PretrainedSED).

    Args:
        num_mel_bins: mel bins of the input (80).
        patch_size: square patch size and stride (16).
        unit_frames: frames per encoder pass (1001 = 10 s); longer inputs are encoded chunk by chunk and the
            chunks' frames concatenated, as the original.
    """

    model_type = "audiozoo-m2d"

    num_mel_bins: int = 80
    patch_size: int = 16
    unit_frames: int = 1001

    @property
    def frequency_patches(self) -> int:
        return self.num_mel_bins // self.patch_size

    @property
    def time_patches(self) -> int:
        return self.unit_frames // self.patch_size


__all__ = ["M2dConfig"]
