"""Pooling, patch-grid reshaping and losses shared by the clip and frame heads of every model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import ModelOutput


@dataclass
class AudioClassifierOutput(ModelOutput):
    """Clip classification output.

    Args:
        loss: classification loss when `labels` were given.
        logits: [B, C] clip logits (apply sigmoid for multi-label checkpoints).
        patch_logits: [B, P, C] per-token logits before pooling, where the head pools per-token logits.
        attention_mask: [B, P] bool, True on the tokens that were pooled.
        hidden_states, attentions: as returned by the encoder on request.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    patch_logits: torch.FloatTensor | None = None
    attention_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class AudioFrameClassifierOutput(ModelOutput):
    """Frame (sound-event) classification output.

    Args:
        loss: masked frame BCE (+ clip BCE when clip labels were given).
        logits: [B, T, C] frame logits at `config.frame_rate` frames per second.
        clip_logits: [B, C] clip logits.
        probabilities: [B, T, C] frame probabilities (sigmoid of `logits`, or the attention head's own output).
        clip_probabilities: [B, C] clip probabilities.
        frame_mask: [B, T] bool, True on frames that hold audio.
        hidden_states, attentions: as returned by the encoder on request.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    clip_logits: torch.FloatTensor | None = None
    probabilities: torch.FloatTensor | None = None
    clip_probabilities: torch.FloatTensor | None = None
    frame_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def masked_mean(values: torch.Tensor, valid_mask: torch.Tensor | None, dim: int = 1) -> torch.Tensor:
    """Mean of `values` over `dim`, counting only positions where `valid_mask` ([B, L]) is True."""
    if valid_mask is None:
        return values.mean(dim=dim)
    weights = valid_mask.to(values.dtype).unsqueeze(-1)
    total = (values * weights).sum(dim=dim)
    count = weights.sum(dim=dim).clamp(min=1.0)
    return total / count


def time_major_patches_to_frames(
    patches: torch.Tensor, num_frequency_patches: int, valid_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Average time-major patch tokens [B, T*F, C] over their F frequency patches -> [B, T, C].

    A time step is valid when any of its patches is valid (mean over its valid patches only).
    """
    batch, num_patches, channels = patches.shape
    if num_patches % num_frequency_patches:
        raise ValueError(
            f"{num_patches} patches do not form a grid of {num_frequency_patches} frequency patches per time step"
        )
    grid = patches.reshape(batch, num_patches // num_frequency_patches, num_frequency_patches, channels)
    if valid_mask is None:
        return grid.mean(dim=2), None
    grid_mask = valid_mask.reshape(batch, -1, num_frequency_patches)
    weights = grid_mask.to(patches.dtype).unsqueeze(-1)
    frames = (grid * weights).sum(dim=2) / weights.sum(dim=2).clamp(min=1.0)
    return frames, grid_mask.any(dim=-1)


def masked_frame_mean(per_element: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of a [B, T, C] elementwise loss over the frames where `frame_mask` ([B, T]) is True (all without)."""
    if frame_mask is None:
        return per_element.mean()
    weights = frame_mask.to(per_element.dtype).unsqueeze(-1).expand_as(per_element)
    return (per_element * weights).sum() / weights.sum().clamp(min=1.0)


def frame_classification_loss(
    frame_logits: torch.Tensor,
    frame_labels: torch.Tensor,
    frame_mask: torch.Tensor | None = None,
    clip_logits: torch.Tensor | None = None,
    clip_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary cross-entropy on float frame labels [B, T, C] over valid frames, plus clip BCE if clip labels are given."""
    if frame_labels.shape != frame_logits.shape:
        raise ValueError(
            f"frame labels must have the shape of the frame logits {tuple(frame_logits.shape)} "
            f"([batch, frames, classes]), got {tuple(frame_labels.shape)}"
        )
    per_element = nn.functional.binary_cross_entropy_with_logits(
        frame_logits, frame_labels.to(frame_logits.dtype), reduction="none"
    )
    loss = masked_frame_mean(per_element, frame_mask)
    if clip_labels is not None:
        if clip_logits is None or clip_labels.shape != clip_logits.shape:
            raise ValueError(f"clip labels must have shape [batch, classes], got {tuple(clip_labels.shape)}")
        loss = loss + nn.functional.binary_cross_entropy_with_logits(clip_logits, clip_labels.to(clip_logits.dtype))
    return loss
