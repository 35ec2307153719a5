"""ATST-Frame (the frame-level ATST encoder) as a transformers model, as PretrainedSED's ATSTWrapper runs it.

Input [B, 1, 64, T] from [`AtstFrameFeatureExtractor`]. The spectrogram is cut to a multiple of 4 frames; every
4 frames x 64 mel bins form one token (feature index mel * 4 + frame), projected by a Linear layer; learned
positions are taken from row 1 on ("cut" positions; row 0 is never used); pre-LN blocks without qkv bias; a final
LayerNorm. Output: [B, T // 4, D], one token per 40 ms.
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
from .configuration_atst_frame import AtstFrameConfig


class AtstFramePreTrainedModel(SedPreTrainedModel):
    config: AtstFrameConfig
    config_class = AtstFrameConfig
    base_model_prefix = "atst"


class AtstFrameModel(SedViTEncoder, AtstFramePreTrainedModel):
    init_tables = ("position_embeddings", "mask_embedding")

    def __init__(self, config: AtstFrameConfig):
        super().__init__(config)
        self.patch_embedding = nn.Linear(config.num_mel_bins * config.patch_frames, config.hidden_size)
        self.position_embeddings = nn.Parameter(torch.zeros(1, config.max_patches + 1, config.hidden_size))
        # the masked-token embedding of ATST's self-supervised training (kept so checkpoints round-trip)
        self.mask_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.post_init()

    def tokens(self, input_values: torch.Tensor) -> torch.Tensor:
        """[B, 1, F, T] -> [B, T // 4, F * 4] (mel-major within a token)."""
        check_spectrogram_input(input_values, self.config.num_mel_bins, "ATST-Frame")
        frames = self.config.patch_frames
        steps = input_values.shape[-1] // frames
        if steps == 0:
            raise ValueError(f"ATST-Frame needs at least {frames} frames, got {input_values.shape[-1]}")
        if steps > self.config.max_patches:
            raise ValueError(
                f"ATST-Frame takes at most {self.config.max_patches * frames} frames "
                f"({self.config.max_patches} tokens, 10 s), got {input_values.shape[-1]}; split longer audio into "
                "chunks (the sound-event-detection pipeline does)"
            )
        grid = input_values[:, 0, :, : steps * frames].reshape(input_values.shape[0], -1, steps, frames)
        return grid.permute(0, 2, 1, 3).flatten(2)

    def embed(self, input_values: torch.Tensor) -> torch.Tensor:
        """Token projections plus the "cut" positions (rows 1..T'; row 0 is never used)."""
        tokens = self.patch_embedding(self.tokens(input_values))
        return tokens + self.position_embeddings[:, 1 : tokens.shape[1] + 1]


class AtstFrameForAudioFrameClassification(SedForAudioFrameClassificationBase, AtstFramePreTrainedModel):
    """ATST-Frame + the PretrainedSED head: 250 frames (40 ms) of strong logits and clip logits per 10 s."""

    encoder_class = AtstFrameModel


class AtstFrameForAudioClassification(SedForAudioClassificationBase, AtstFramePreTrainedModel):
    """ATST-Frame + a clip head: the PretrainedSED head's clip logits when `config.sed_head` is set, else LayerNorm +
    Linear on the mean over time of the 40 ms tokens (ATST-Frame has no CLS token; PretrainedSED's clip head also
    reads the mean of its tokens). Takes at most 10 s: the audio-classification pipeline classifies longer clips
    window by window."""

    encoder_class = AtstFrameModel


__all__ = [
    "AtstFrameForAudioClassification",
    "AtstFrameForAudioFrameClassification",
    "AtstFrameModel",
    "AtstFramePreTrainedModel",
]
