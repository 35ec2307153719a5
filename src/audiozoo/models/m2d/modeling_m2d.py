"""M2D as a transformers model, as PretrainedSED's M2D wrapper (portable_m2d) runs it.

Input [B, 1, 80, T] from [`M2dFeatureExtractor`]. The spectrogram is encoded in chunks of `unit_frames` (1001)
frames; the last chunk is zero-padded to a multiple of 16 frames. Per chunk: 16x16 patches in frequency-major
order (5 x t), learned positions cut to the first t time columns, a CLS token (with its position) prepended,
pre-LN ViT blocks, final LayerNorm, CLS dropped, and the 5 frequency tokens of each time step concatenated
(low frequency first) into one 5 * D feature: [B, t, 5 * D], 160 ms per step.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from ...layers.sed_model import (
    SedForAudioClassificationBase,
    SedForAudioFrameClassificationBase,
    SedPreTrainedModel,
    SedViTEncoder,
    check_spectrogram_input,
)
from ...layers.vit import PatchEmbedding, run_blocks
from .configuration_m2d import M2dConfig


class M2dPreTrainedModel(SedPreTrainedModel):
    config: M2dConfig
    config_class = M2dConfig
    base_model_prefix = "m2d"


class M2dModel(SedViTEncoder, M2dPreTrainedModel):
    init_tables = ("cls_token", "position_embeddings")

    def __init__(self, config: M2dConfig):
        super().__init__(config)
        size, patch = config.hidden_size, config.patch_size
        self.patch_embedding = PatchEmbedding(size, patch, (patch, patch))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, 1 + config.frequency_patches * config.time_patches, size))
        self.post_init()

    @property
    def output_size(self) -> int:
        return self.config.hidden_size * self.config.frequency_patches

    def _encode_chunk(self, chunk: torch.Tensor, output_hidden_states: bool, output_attentions: bool):
        patches = self.patch_embedding(chunk)  # [B, 5 * t, D], frequency-major
        bands = self.config.frequency_patches
        steps = patches.shape[1] // bands
        table = self.position_embeddings[:, 1:]
        table = table.reshape(1, bands, -1, table.shape[-1])[:, :, :steps].reshape(1, bands * steps, -1)
        cls = (self.cls_token + self.position_embeddings[:, :1]).expand(patches.shape[0], -1, -1)
        hidden = torch.cat([cls, patches + table], dim=1)
        hidden, all_hidden, all_attentions = run_blocks(self.layers, hidden, None, output_hidden_states, output_attentions)
        tokens = self.layer_norm(hidden)[:, 1:]
        batch, _, size = tokens.shape
        frames = tokens.reshape(batch, bands, steps, size).permute(0, 2, 1, 3).reshape(batch, steps, bands * size)
        return frames, all_hidden or (), all_attentions or ()

    def encode(self, input_values: torch.Tensor, output_hidden_states: bool, output_attentions: bool) -> BaseModelOutput:
        """`last_hidden_state`: [B, t, 5 * D] stacked frame features of all chunks. hidden_states / attentions:
        per layer, the chunks' token sequences (CLS included) concatenated along the token axis."""
        check_spectrogram_input(input_values, self.config.num_mel_bins, "M2D")
        unit, patch = self.config.unit_frames, self.config.patch_size
        frames = input_values.shape[-1]
        if frames < patch:
            raise ValueError(f"M2D needs at least {patch} frames, got {frames}")
        pad = (patch - frames % unit % patch) % patch
        if pad:
            input_values = nn.functional.pad(input_values, (0, pad))
        chunks = [self._encode_chunk(input_values[..., start : start + unit], output_hidden_states, output_attentions)
                  for start in range(0, frames, unit)]
        sequence = torch.cat([chunk[0] for chunk in chunks], dim=1)
        hidden_states = tuple(torch.cat(layer, dim=1) for layer in zip(*(c[1] for c in chunks))) or None
        attentions = tuple(layer for chunk in chunks for layer in chunk[2]) or None
        return BaseModelOutput(last_hidden_state=sequence, hidden_states=hidden_states, attentions=attentions)


class M2dForAudioFrameClassification(SedForAudioFrameClassificationBase, M2dPreTrainedModel):
    """M2D + the PretrainedSED head: its 62 stacked frames per 10 s interpolated to 250 frames (40 ms)."""

    encoder_class = M2dModel


class M2dForAudioClassification(SedForAudioClassificationBase, M2dPreTrainedModel):
    """M2D + a clip head: the PretrainedSED head's clip logits when `config.sed_head` is set, else LayerNorm + Linear
    on the mean over time of the stacked [t, 5 * D] frame features (as M2D's own classifier, which averages its
    frame features over time; M2D's CLS token is dropped from the output, as in the original). Takes any length, but
    was trained on 10 s: the audio-classification pipeline classifies longer clips window by window."""

    encoder_class = M2dModel


__all__ = ["M2dForAudioClassification", "M2dForAudioFrameClassification", "M2dModel", "M2dPreTrainedModel"]
