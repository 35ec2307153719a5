"""Configuration of ASiT (Atito et al.) as used by PretrainedSED."""

from __future__ import annotations

from ...layers.sed_model import SedEncoderConfig


class AsitConfig(SedEncoderConfig):
    r"""Configuration of [`AsitModel`] and [`AsitForAudioFrameClassification`].

    Defaults are the released model: ViT-B/16 with a CLS token over [T, 128] filterbank images.

    Args:
        num_mel_bins: mel bins of the input (128).
        patch_size: square patch size and stride (16).
        position_grid: the (rows, columns) the stored position table is reshaped to before it is resized to the
            input's (T // 16, mel // 16) grid. ASiT was pre-trained on 592 frames (37 time x 8 frequency patches,
            time-major), but PretrainedSED reshapes that table as (8, 37): a scramble the fine-tuned weights
            adapted to, kept here literally so outputs match.
    """

    model_type = "audiozoo-asit"

    num_mel_bins: int = 128
    patch_size: int = 16
    position_grid: list | None = None

    def __post_init__(self, **kwargs):
        if self.position_grid is None:
            self.position_grid = [8, 37]
        super().__post_init__(**kwargs)


__all__ = ["AsitConfig"]
