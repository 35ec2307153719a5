"""frame-PaSST as a transformers model, as PretrainedSED's FPaSSTWrapper runs it (frame_patchout 0, eval).

Input [B, 1, 128, T] from [`PasstMelFeatureExtractor`] (periodic window). Stem: three 3x3 convolutions with GELU
(strides 2, 1, 2) -> [B, 64, 32, T/4], reshaped as stored in memory to [B, 16, 128, T/4]; a (128 x 2) patch
convolution padded by one frame on each side, whose first output frame is dropped -> one token per 40 ms; learned
time and frequency positions; cls and distillation tokens with their own positions; pre-LN DeiT blocks; final
LayerNorm; the two special tokens are dropped from the output: [B, T', D].
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
from .configuration_fpasst import FpasstConfig


class FpasstPreTrainedModel(SedPreTrainedModel):
    config: FpasstConfig
    config_class = FpasstConfig
    base_model_prefix = "fpasst"


class FpasstModel(SedViTEncoder, FpasstPreTrainedModel):
    init_tables = ("cls_token", "distillation_token", "token_position_embeddings", "time_position_embeddings",
                   "frequency_position_embeddings")

    def __init__(self, config: FpasstConfig):
        super().__init__(config)
        first, second, third = config.stem_channels
        self.conv_in_1 = nn.Conv2d(1, first, 3, stride=2, padding=1)
        self.conv_in_2 = nn.Conv2d(first, second, 3, stride=1, padding=1)
        self.conv_in_3 = nn.Conv2d(second, third, 3, stride=2, padding=1)
        self.activation = nn.GELU()
        stem_height = -(-(-(-config.num_mel_bins // 2)) // 2)  # ceil(ceil(F / 2) / 2)
        if (third * stem_height) % config.patch_channels:
            raise ValueError(f"{third} x {stem_height} stem features do not reshape into {config.patch_channels} channels")
        self.patch_height = third * stem_height // config.patch_channels
        self.patch_embedding = nn.Conv2d(
            config.patch_channels, config.hidden_size, kernel_size=(self.patch_height, 2), stride=1, padding=(0, 1)
        )
        size = config.hidden_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, size))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, size))
        self.token_position_embeddings = nn.Parameter(torch.zeros(1, 2, size))
        self.frequency_position_embeddings = nn.Parameter(torch.zeros(1, size, 1, 1))
        self.time_position_embeddings = nn.Parameter(torch.zeros(1, size, 1, config.max_patches))
        self.post_init()

    def embed(self, input_values: torch.Tensor) -> torch.Tensor:
        """Stem, patch conv (first output frame dropped), time/frequency positions, cls and distillation tokens."""
        check_spectrogram_input(input_values, self.config.num_mel_bins, "fPaSST")
        stem = self.activation(self.conv_in_1(input_values))
        stem = self.activation(self.conv_in_2(stem))
        stem = self.activation(self.conv_in_3(stem))
        batch, _, _, steps = stem.shape
        stem = stem.reshape(batch, self.config.patch_channels, self.patch_height, steps)
        patches = self.patch_embedding(stem)[..., 1:]  # [B, D, 1, T']
        if patches.shape[-1] > self.config.max_patches:
            raise ValueError(
                f"fPaSST takes at most {self.config.max_patches} time patches (10 s), got {patches.shape[-1]} from "
                f"{input_values.shape[-1]} frames; split longer audio into chunks (the sound-event-detection "
                "pipeline does). The original cuts the rest off silently."
            )
        patches = patches + self.time_position_embeddings[..., : patches.shape[-1]] + self.frequency_position_embeddings
        tokens = patches.flatten(2).transpose(1, 2)
        special = torch.cat([self.cls_token, self.distillation_token], dim=1) + self.token_position_embeddings
        return torch.cat([special.expand(batch, -1, -1), tokens], dim=1)

    def select(self, normalised: torch.Tensor) -> torch.Tensor:
        """The patch tokens: the cls and distillation tokens are dropped, as the original."""
        return normalised[:, 2:]


class FpasstForAudioFrameClassification(SedForAudioFrameClassificationBase, FpasstPreTrainedModel):
    """fPaSST + the PretrainedSED head: 250 frames (40 ms) of strong logits and clip logits per 10 s."""

    encoder_class = FpasstModel


class FpasstForAudioClassification(SedForAudioClassificationBase, FpasstPreTrainedModel):
    """fPaSST + a clip head: the PretrainedSED head's clip logits when `config.sed_head` is set, else LayerNorm + Linear
    on the mean over time of the 40 ms patch tokens. Not PaSST's (cls + dist) / 2: the frame model drops those two
    tokens from its output as the original wrapper does, and PretrainedSED's heads only ever read the frame tokens
    (its clip head, their mean). Takes at most 10 s: the audio-classification pipeline classifies longer clips
    window by window."""

    encoder_class = FpasstModel


__all__ = ["FpasstForAudioClassification", "FpasstForAudioFrameClassification", "FpasstModel", "FpasstPreTrainedModel"]
