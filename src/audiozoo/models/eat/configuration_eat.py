"""Configuration of EAT (Chen et al., IJCAI 2024), the data2vec-2.0-style audio ViT of cwx-worst-one/EAT."""

from __future__ import annotations

from ...layers.vit import FilterbankViTConfig


class EatConfig(FilterbankViTConfig):
    r"""Configuration of [`EatModel`], [`EatForAudioClassification`] and [`EatForAudioFrameClassification`].

    Defaults are EAT-base (768 wide, 12 post-LN blocks, 12 heads), 1024-frame (10 s) input.

    Args:
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, hidden_act, qkv_bias: the ViT.
        layer_norm_eps: eps of the input LayerNorm and of every block's LayerNorms (1e-6).
        classifier_layer_norm_eps: eps of the fine-tuned head's fc_norm (1e-6 in fairseq).
        patch_size: square patches with stride = patch size, time-major tokens (8 frequency patches per step; the
            frame head's 6.25 steps per second).
        max_length: input frames (the feature extractor pads or, when asked, cuts to this; multiple of 16).
        num_positions: rows of the fixed sin-cos position table (768 time patches x 8 in current releases).
        num_mel_bins, sampling_rate, frame_shift_ms: the front end the model expects.
    """

    model_type = "audiozoo-eat"

    classifier_layer_norm_eps: float = 1e-6
    num_positions: int = 6144

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.max_length % self.patch_size:
            raise ValueError(f"max_length ({self.max_length}) must be a multiple of patch_size ({self.patch_size})")

    @property
    def num_frequency_patches(self) -> int:
        return self.num_mel_bins // self.patch_size


__all__ = ["EatConfig"]
