"""ASiT as a transformers model, as PretrainedSED's ASiT wrapper runs it.

Input [B, 1, 128, T] from [`AsitFeatureExtractor`], transposed to a [T, 128] image; 16x16 patches (stride 16;
trailing frames that do not fill a patch are dropped) in time-major order (8 frequency patches per time step);
a CLS token first; learned positions resized bicubically to the input's grid (see `AsitConfig.position_grid`);
pre-LN ViT blocks; final LayerNorm. Output: all 1 + (T // 16) * 8 tokens, CLS included, as the original
returns them (the prediction head pools this flat sequence).
"""

from __future__ import annotations

import torch
from torch import nn

from ...layers.sed_model import (
    SedForAudioClassificationBase,
    SedForAudioFrameClassificationBase,
    SedPreTrainedModel,
    SedViTEncoder,
    check_spectrogram_input,
)
from ...layers.vit import PatchEmbedding
from .configuration_asit import AsitConfig


class AsitPreTrainedModel(SedPreTrainedModel):
    config: AsitConfig
    config_class = AsitConfig
    base_model_prefix = "asit"


class AsitModel(SedViTEncoder, AsitPreTrainedModel):
    init_tables = ("cls_token", "position_embeddings")

    def __init__(self, config: AsitConfig):
        super().__init__(config)
        size, patch = config.hidden_size, config.patch_size
        self.patch_embedding = PatchEmbedding(size, patch, (patch, patch))
        rows, columns = config.position_grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, 1 + rows * columns, size))
        self.post_init()

    def positions(self, frames: int) -> torch.Tensor:
        """The position table for `frames` input frames (the original's interpolate_pos_encoding)."""
        patch = self.config.patch_size
        stored = self.position_embeddings.shape[1] - 1
        if (frames / patch) * (self.config.num_mel_bins / patch) == stored:
            return self.position_embeddings
        rows, columns = self.config.position_grid
        table = self.position_embeddings[:, 1:].transpose(1, 2).reshape(1, -1, rows, columns)
        grid = (frames // patch, self.config.num_mel_bins // patch)
        resized = nn.functional.interpolate(table, size=grid, mode="bicubic", align_corners=False)
        resized = resized.reshape(1, table.shape[1], grid[0] * grid[1]).transpose(1, 2)
        return torch.cat([self.position_embeddings[:, :1], resized], dim=1)

    def embed(self, input_values: torch.Tensor) -> torch.Tensor:
        """CLS + time-major 16x16 patch tokens of the [T, 128] image, plus the re-gridded positions."""
        check_spectrogram_input(input_values, self.config.num_mel_bins, "ASiT")
        frames = input_values.shape[-1]
        if frames < self.config.patch_size:
            raise ValueError(f"ASiT needs at least {self.config.patch_size} frames, got {frames}")
        patches = self.patch_embedding(input_values.transpose(2, 3))  # [B, (T // 16) * 8, D], time-major
        tokens = torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1)
        return tokens + self.positions(frames)


class AsitForAudioFrameClassification(SedForAudioFrameClassificationBase, AsitPreTrainedModel):
    """ASiT + the PretrainedSED head: its 497 tokens per 10 s pooled to 250 frames (40 ms)."""

    encoder_class = AsitModel


class AsitForAudioClassification(SedForAudioClassificationBase, AsitPreTrainedModel):
    """ASiT + a clip head: the PretrainedSED head's clip logits when `config.sed_head` is set, else LayerNorm + Linear
    on the CLS token (first in the encoder's output: ASiT is a ViT with a CLS token, the clip-level token a ViT
    classifier reads). Takes any length, but was trained on 10 s: the audio-classification pipeline classifies
    longer clips window by window."""

    encoder_class = AsitModel
    clip_pooling = "cls"


__all__ = ["AsitForAudioClassification", "AsitForAudioFrameClassification", "AsitModel", "AsitPreTrainedModel"]
