"""Helpers shared by every conversion: reading original checkpoints, renaming keys, strict loading, saving."""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """An original checkpoint is unreadable, of another family, or lacks what the conversion needs."""


def load_torch_checkpoint(path: str | Path) -> object:
    """`torch.load` with `weights_only=True` (no code runs), turning low-level failures into clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "Weights only load failed" in str(error):
            raise CheckpointError(
                f"{path} pickles objects other than tensors and plain containers, which this conversion does "
                f"not execute ({message})"
            ) from error
        raise CheckpointError(
            f"could not read {path} as a PyTorch checkpoint (truncated or corrupt file?): {message}"
        ) from error


def rename_keys(
    state_dict: dict[str, torch.Tensor],
    rules: Iterable[tuple[str, str]],
    *,
    dropped: Iterable[str] = (),
    source: str = "checkpoint",
) -> dict[str, torch.Tensor]:
    """Apply the first matching (regex, replacement) rule to every key; keys matching `dropped` are skipped.

    A key that no rule or drop pattern matches is an error: nothing is silently left behind.
    """
    rules = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    dropped = [re.compile(pattern) for pattern in dropped]
    renamed, unmatched = {}, []
    for key, tensor in state_dict.items():
        if any(pattern.fullmatch(key) for pattern in dropped):
            continue
        for pattern, replacement in rules:
            if pattern.fullmatch(key):
                renamed[pattern.sub(replacement, key)] = tensor
                break
        else:
            unmatched.append(key)
    if unmatched:
        raise CheckpointError(f"{source} has weights this conversion does not know: {sorted(unmatched)[:20]}")
    return renamed


def timm_block_rules(prefix: str, target: str) -> list[tuple[str, str]]:
    """Rename rules for timm ViT blocks `{prefix}blocks.N.*` -> `{target}.layers.N.*` of `vit.PreNormBlock`
    (the fused qkv is split separately by `split_timm_qkv`). `prefix` is a regex (escape dots)."""
    return [
        (rf"{prefix}blocks\.(\d+)\.norm1\.(weight|bias)", rf"{target}.layers.\1.attention_norm.\2"),
        (rf"{prefix}blocks\.(\d+)\.attn\.proj\.(weight|bias)", rf"{target}.layers.\1.attention.out_proj.\2"),
        (rf"{prefix}blocks\.(\d+)\.norm2\.(weight|bias)", rf"{target}.layers.\1.mlp_norm.\2"),
        (rf"{prefix}blocks\.(\d+)\.mlp\.fc([12])\.(weight|bias)", rf"{target}.layers.\1.mlp.fc\2.\3"),
    ]


def timm_qkv_pattern(prefix: str) -> str:
    return rf"{prefix}blocks\.\d+\.attn\.qkv\.(weight|bias)"


def split_timm_qkv(state_dict: dict[str, torch.Tensor], prefix: str, target: str, hidden_size: int) -> dict:
    """timm's fused `{prefix}blocks.N.attn.qkv` -> separate `{target}.layers.N.attention.{q,k,v}_proj`."""
    from ..layers.vit import split_fused_qkv

    split = {}
    for key, tensor in state_dict.items():
        match = re.fullmatch(rf"{prefix}blocks\.(\d+)\.attn\.qkv\.(weight|bias)", key)
        if match:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), split_fused_qkv(tensor, hidden_size), strict=True):
                split[f"{target}.layers.{match.group(1)}.attention.{name}.{match.group(2)}"] = part
    return split


def load_state_dict_strictly(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load with every model tensor present, no tensor left over and every shape equal, or raise naming them."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in sorted(set(expected) & set(state_dict))
        if state_dict[key].shape != expected[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing weights {missing[:20]}")
    if unexpected:
        problems.append(f"unexpected weights {unexpected[:20]}")
    if mismatched:
        problems.append(f"shape mismatches {mismatched[:20]}")
    if problems:
        raise CheckpointError(f"{source} does not fit the model built from its config: " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)
