"""Original AST checkpoints (YuanGongND/ast, DataParallel state dicts) -> audiozoo AST models.

The released files hold no config: strides come from the file name (audioset_10_10_0.4593.pth) or the command
line, the input length and labels from the recipe (`--dataset`), widths from the tensors. The number of heads
cannot be read from the weights; it defaults to hidden_size // 64 (every released model: 768 / 12).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from ..data.labels import dataset_labels
from ..models.ast import AST_PRESETS, AstConfig, AstFeatureExtractor, AstForAudioClassification
from ..layers.vit import regrid_position_table
from .common import (
    CheckpointError,
    load_state_dict_strictly,
    load_torch_checkpoint,
    rename_keys,
    split_timm_qkv,
    timm_block_rules,
    timm_qkv_pattern,
)

logger = logging.getLogger(__name__)

RULES: list[tuple[str, str]] = [
    (r"v\.cls_token", "ast.embeddings.cls_token"),
    (r"v\.dist_token", "ast.embeddings.distillation_token"),
    (r"v\.pos_embed", "ast.embeddings.position_embeddings"),
    (r"v\.patch_embed\.proj\.(weight|bias)", r"ast.embeddings.patch_embedding.conv.\1"),
    *timm_block_rules(r"v\.", "ast"),
    (r"v\.norm\.(weight|bias)", r"ast.layer_norm.\1"),
    (r"mlp_head\.0\.(weight|bias)", r"classifier.layer_norm.\1"),
    (r"mlp_head\.1\.(weight|bias)", r"classifier.dense.\1"),
]
# DeiT's ImageNet heads: stored in every release, never used by AST
UNUSED = [r"v\.head\.(weight|bias)", r"v\.head_dist\.(weight|bias)"]


def strides_from_filename(name: str) -> tuple[int, int] | None:
    """audioset_12_12_0.4467.pth -> (12, 12); None if the name does not say."""
    match = re.search(r"_(\d+)_(\d+)_0\.\d+\.pth$", name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def read_ast_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict without its `module.` prefix, or an error saying why this is not an AST checkpoint."""
    checkpoint = load_torch_checkpoint(path)
    if not isinstance(checkpoint, dict) or not all(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(
            f"{path} is not an AST checkpoint: expected a flat state dict of tensors (DataParallel(ASTModel)"
            f".state_dict()), found {found}"
        )
    state_dict = {key.removeprefix("module."): value for key, value in checkpoint.items()}
    required = ("v.pos_embed", "v.patch_embed.proj.weight", "mlp_head.1.weight")
    absent = [key for key in required if key not in state_dict]
    if absent:
        raise CheckpointError(
            f"{path} is not an AST checkpoint: missing {['module.' + key for key in absent]} "
            f"(first keys: {sorted(checkpoint)[:5]})"
        )
    return state_dict


def convert_ast_checkpoint(
    checkpoint_path: str | Path,
    *,
    dataset: str = "audioset",
    frequency_stride: int | None = None,
    time_stride: int | None = None,
    max_length: int | None = None,
    num_attention_heads: int | None = None,
    target_max_length: int | None = None,
) -> tuple[AstForAudioClassification, AstFeatureExtractor]:
    """Original file -> (AstForAudioClassification in eval mode, loaded strictly; its feature extractor).

    Args:
        dataset: recipe preset ("audioset", "esc50", "speechcommands"): normalisation stats, input length, labels.
        frequency_stride, time_stride: default: parsed from the file name.
        max_length: input frames the checkpoint was trained with (default: the preset's).
        num_attention_heads: default hidden_size // 64.
        target_max_length: re-grid the position table for another input length (cut or interpolated in time,
            as the original adapts tables).
    """
    if dataset not in AST_PRESETS:
        raise ValueError(f"unknown dataset preset {dataset!r}; expected one of {sorted(AST_PRESETS)}")
    state_dict = read_ast_state_dict(checkpoint_path)
    strides = strides_from_filename(Path(checkpoint_path).name)
    frequency_stride = frequency_stride or (strides[0] if strides else None)
    time_stride = time_stride or (strides[1] if strides else None)
    if frequency_stride is None or time_stride is None:
        raise CheckpointError(
            f"the strides of {Path(checkpoint_path).name} are unknown: the file name does not give them "
            "(audioset_<f>_<t>_<mAP>.pth); pass frequency_stride and time_stride"
        )
    preset = AST_PRESETS[dataset]
    max_length = max_length or int(preset["max_length"])
    hidden_size = state_dict["v.cls_token"].shape[-1]
    layers = 1 + max(int(key.split(".")[2]) for key in state_dict if key.startswith("v.blocks."))
    num_labels = state_dict["mlp_head.1.weight"].shape[0]
    config = AstConfig(
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=num_attention_heads or max(1, hidden_size // 64),
        intermediate_size=state_dict["v.blocks.0.mlp.fc1.weight"].shape[0],
        patch_size=state_dict["v.patch_embed.proj.weight"].shape[-1],
        frequency_stride=frequency_stride,
        time_stride=time_stride,
        max_length=max_length,
        num_mel_bins=128,
        **_label_fields(dataset, num_labels),
    )
    stored = state_dict["v.pos_embed"].shape[1] - 2
    if stored != config.frequency_patches * config.time_patches:
        raise CheckpointError(
            f"the position table holds {stored} patches, but strides {frequency_stride}/{time_stride} and "
            f"{max_length} frames give {config.frequency_patches} x {config.time_patches}; check the strides and "
            "the input length (max_length / dataset preset)"
        )
    model = AstForAudioClassification(config)
    renamed = rename_keys(state_dict, RULES, dropped=UNUSED + [timm_qkv_pattern(r"v\.")],
                          source="AST checkpoint")
    renamed.update(split_timm_qkv(state_dict, r"v\.", "ast", hidden_size))
    load_state_dict_strictly(model, renamed, source=str(checkpoint_path))
    logger.info("dropped the unused DeiT heads v.head / v.head_dist")
    if target_max_length is not None and target_max_length != max_length:
        model = regrid_input_length(model, target_max_length)
    feature_extractor = AstFeatureExtractor(mean=preset["mean"], std=preset["std"], max_length=model.config.max_length)
    return model.eval(), feature_extractor


def _label_fields(dataset: str, num_labels: int) -> dict:
    names, mids = dataset_labels(dataset)
    if len(names) != num_labels:
        logger.warning(
            "the checkpoint has %d classes but the %s label list has %d; labels will be LABEL_<i>",
            num_labels, dataset, len(names),
        )
        return {"id2label": {index: f"LABEL_{index}" for index in range(num_labels)}}
    problem = "single_label_classification" if dataset == "esc50" else "multi_label_classification"
    return {"id2label": dict(enumerate(names)), "problem_type": problem}


def regrid_input_length(model: AstForAudioClassification, max_length: int) -> AstForAudioClassification:
    """A copy of `model` for `max_length` input frames, its position table cut or interpolated in time."""
    old = model.config
    config = AstConfig(**{**old.to_dict(), "max_length": max_length})
    resized = AstForAudioClassification(config)
    state_dict = model.state_dict()
    key = "ast.embeddings.position_embeddings"
    table = state_dict[key]
    patches = regrid_position_table(
        table[:, 2:], (old.frequency_patches, old.time_patches), (config.frequency_patches, config.time_patches)
    )
    state_dict[key] = torch.cat([table[:, :2], patches], dim=1)
    load_state_dict_strictly(resized, state_dict, source="re-gridded AST")
    return resized.eval()


def convert_and_save(checkpoint_path: str | Path, output_dir: str | Path, *, push_to_hub: str | None = None,
                     **options) -> Path:
    """Convert, then write the folder (weights, config, preprocessor config, card, remote code) and verify it."""
    from .output import convert_and_save_with

    return convert_and_save_with(convert_ast_checkpoint, checkpoint_path, output_dir, push_to_hub=push_to_hub, **options)
