"""Padding masks shared by the front ends and the models.

Convention inside audiozoo: ``attention_mask`` is 1/True on valid positions (as in transformers); the
original research code often passes ``padding_mask`` (True on padding). Helpers say which they take.
"""

from __future__ import annotations

import torch


def reduce_valid_mask_by_chunks(valid_mask: torch.Tensor, target_length: int) -> torch.Tensor:
    """Shrink a [B, N] valid mask to [B, target_length] the way fairseq-style encoders (BEATs, EAT) do.

    The last ``N % target_length`` positions are dropped, the rest is cut into ``target_length`` equal
    chunks, and a chunk is valid if ANY of its positions is valid (the original computes the dual:
    padding only if ALL positions are padding). The chunks are not the real receptive fields of the
    outputs; this is reproduced on purpose because it decides which patches the original masks.
    """
    if valid_mask.dim() != 2:
        raise ValueError(f"expected a [batch, length] mask, got shape {tuple(valid_mask.shape)}")
    length = valid_mask.shape[1]
    if target_length <= 0 or target_length > length:
        raise ValueError(f"cannot reduce a mask of length {length} to {target_length} positions")
    usable = length - length % target_length
    chunks = valid_mask[:, :usable].bool().reshape(valid_mask.shape[0], target_length, -1)
    return chunks.any(dim=-1)


def lengths_to_valid_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """[B] lengths -> [B, max_length] bool mask, True on the first ``lengths[b]`` positions."""
    positions = torch.arange(max_length, device=lengths.device)
    return positions[None, :] < lengths[:, None]
