"""Configuration of ATST-Frame (Li et al., TASLP 2024) as used by PretrainedSED."""

from __future__ import annotations

from ...layers.sed_model import SedEncoderConfig


class AtstFrameConfig(SedEncoderConfig):
    r"""Configuration of [`AtstFrameModel`] and [`AtstFrameForAudioFrameClassification`].

    Defaults are the released model: ViT-B without qkv bias over tokens of 4 frames x 64 mel bins (40 ms).

    Args:
        num_mel_bins: mel bins per token (the patch height; the front end's 64).
        patch_frames: spectrogram frames per token.
        max_patches: rows of the position table minus its unused first row (250 = 10 s); longer inputs are
            refused (the original fails on them too), so long audio goes through the pipeline's chunking.
    """

    model_type = "audiozoo-atst-frame"

    qkv_bias: bool = False
    num_mel_bins: int = 64
    patch_frames: int = 4
    max_patches: int = 250


__all__ = ["AtstFrameConfig"]
