"""PretrainedSED checkpoints (fschmid56/PretrainedSED release v0.0.1) -> audiozoo frame classifiers.

The released `<Model>_{strong_1,weak,ssl}.pt` files are plain state dicts of the original `PredictionsWrapper`
in the key layout of the paper's training (before `load_checkpoint`'s renaming): the encoder under `model.`
(`model.atst.`, `model.model.` for BEATs, `model.backbone.` + `model.to_spec.` for M2D, `model.frame_mn.`,
bare `model.` for fPaSST and ASiT), heads `strong_head.*` / `weak_head.*`, and `seq_model.rnn.*` for the
recurrent teachers. Files already renamed by the original loader (`model.fpasst.`, `model.asit.`,
`model.m2d.`, `model.beats.`) are accepted too.

Heads: as the original loader, heads whose class count differs from `num_labels` (or that are absent, as in
SSL files) are left out and freshly initialised, and the conversion says so. Nothing is downloaded; fPaSST's
ImageNet initialisation is never run (every weight comes from the file).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.labels import dataset_labels
from ..layers.sed_head import SedHeadSettings
from .arguments import SED_MODEL_NAMES as MODEL_NAMES
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

RELEASE_URL = "https://github.com/fschmid56/PretrainedSED/releases/download/v0.0.1/{name}.pt"


@dataclass
class SedFamily:
    """How one released model name maps to an audiozoo family."""

    prefixes: tuple[str, ...]  # encoder key prefixes in released files, then in renamed files
    build: Callable[[dict[str, torch.Tensor], dict], tuple[object, object, dict[str, torch.Tensor]]]


def _count_layers(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    indices = {int(m.group(1)) for key in state_dict if (m := re.match(rf"{re.escape(prefix)}blocks\.(\d+)\.", key))}
    if not indices:
        raise CheckpointError(f"no transformer blocks under {prefix!r} in the checkpoint")
    return 1 + max(indices)


def _vit_fields(state_dict: dict, prefix: str, hidden_size: int, heads: int | None) -> dict:
    return dict(
        hidden_size=hidden_size,
        num_hidden_layers=_count_layers(state_dict, prefix),
        num_attention_heads=heads or max(1, hidden_size // 64),
        intermediate_size=state_dict[f"{prefix}blocks.0.mlp.fc1.weight"].shape[0],
    )


def _build_atst(state_dict: dict, options: dict):
    from ..models.atst_frame import AtstFrameConfig, AtstFrameFeatureExtractor, AtstFrameForAudioFrameClassification

    prefix = "model.atst."
    hidden = state_dict[prefix + "pos_embed"].shape[-1]
    config = AtstFrameConfig(
        **_vit_fields(state_dict, prefix, hidden, options.get("num_attention_heads")),
        max_patches=state_dict[prefix + "pos_embed"].shape[1] - 1,
        num_mel_bins=state_dict[prefix + "patch_embed.patch_embed.weight"].shape[1] // 4,
        **options["head_fields"],
    )
    p = re.escape(prefix)
    rules = [
        (rf"{p}mask_embed", "atst.mask_embedding"),
        (rf"{p}pos_embed", "atst.position_embeddings"),
        (rf"{p}patch_embed\.patch_embed\.(weight|bias)", r"atst.patch_embedding.\1"),
        (rf"{p}norm_frame\.(weight|bias)", r"atst.layer_norm.\1"),
        *timm_block_rules(p, "atst"),
    ]
    weights = rename_keys(state_dict, rules, dropped=[timm_qkv_pattern(p)],
                          source="ATST-Frame checkpoint")
    weights.update(split_timm_qkv(state_dict, p, "atst", hidden))
    return AtstFrameForAudioFrameClassification(config), AtstFrameFeatureExtractor(), weights


def _build_fpasst(state_dict: dict, options: dict):
    from ..models.fpasst import FpasstConfig, FpasstForAudioFrameClassification, PasstMelFeatureExtractor

    prefix = "model."
    hidden = state_dict[prefix + "cls_token"].shape[-1]
    stem = [state_dict[f"{prefix}conv_in_{index}.weight"].shape[0] for index in (1, 2, 3)]
    patch = state_dict[prefix + "patch_embed.proj.weight"]
    config = FpasstConfig(
        **_vit_fields(state_dict, prefix, hidden, options.get("num_attention_heads")),
        stem_channels=stem, patch_channels=patch.shape[1],
        max_patches=state_dict[prefix + "time_new_pos_embed"].shape[-1],
        **options["head_fields"],
    )
    p = re.escape(prefix)
    rules = [
        (rf"{p}cls_token", "fpasst.cls_token"),
        (rf"{p}dist_token", "fpasst.distillation_token"),
        (rf"{p}new_pos_embed", "fpasst.token_position_embeddings"),
        (rf"{p}freq_new_pos_embed", "fpasst.frequency_position_embeddings"),
        (rf"{p}time_new_pos_embed", "fpasst.time_position_embeddings"),
        (rf"{p}conv_in_([123])\.(weight|bias)", r"fpasst.conv_in_\1.\2"),
        (rf"{p}patch_embed\.proj\.(weight|bias)", r"fpasst.patch_embedding.\1"),
        (rf"{p}norm\.(weight|bias)", r"fpasst.layer_norm.\1"),
        *timm_block_rules(p, "fpasst"),
    ]
    # PaSST's ImageNet classifier heads, if a file still carries them, are never used by the frame model
    unused = [rf"{p}head\.\d*\.?(weight|bias)", rf"{p}head_dist\.(weight|bias)"]
    weights = rename_keys(state_dict, rules, dropped=unused + [timm_qkv_pattern(p)],
                          source="fPaSST checkpoint")
    weights.update(split_timm_qkv(state_dict, p, "fpasst", hidden))
    return FpasstForAudioFrameClassification(config), PasstMelFeatureExtractor(periodic_window=True), weights


def _build_asit(state_dict: dict, options: dict):
    from ..models.asit import AsitConfig, AsitFeatureExtractor, AsitForAudioFrameClassification

    prefix = "model."
    hidden = state_dict[prefix + "cls_token"].shape[-1]
    patch = state_dict[prefix + "patch_embed.proj.weight"].shape[-1]
    stored = state_dict[prefix + "pos_embed"].shape[1] - 1
    grid = [128 // patch, stored // (128 // patch)]
    config = AsitConfig(
        **_vit_fields(state_dict, prefix, hidden, options.get("num_attention_heads")),
        patch_size=patch, position_grid=grid, **options["head_fields"],
    )
    p = re.escape(prefix)
    rules = [
        (rf"{p}cls_token", "asit.cls_token"),
        (rf"{p}pos_embed", "asit.position_embeddings"),
        (rf"{p}patch_embed\.proj\.(weight|bias)", r"asit.patch_embedding.conv.\1"),
        (rf"{p}norm\.(weight|bias)", r"asit.layer_norm.\1"),
        *timm_block_rules(p, "asit"),
    ]
    weights = rename_keys(state_dict, rules, dropped=[timm_qkv_pattern(p)],
                          source="ASiT checkpoint")
    weights.update(split_timm_qkv(state_dict, p, "asit", hidden))
    return AsitForAudioFrameClassification(config), AsitFeatureExtractor(), weights


def _build_m2d(state_dict: dict, options: dict):
    from ..models.m2d import M2dConfig, M2dFeatureExtractor, M2dForAudioFrameClassification

    prefix = "model.backbone."
    hidden = state_dict[prefix + "cls_token"].shape[-1]
    patch = state_dict[prefix + "patch_embed.proj.weight"].shape[-1]
    stored = state_dict[prefix + "pos_embed"].shape[1] - 1
    config = M2dConfig(
        **_vit_fields(state_dict, prefix, hidden, options.get("num_attention_heads")),
        patch_size=patch, unit_frames=1001, **options["head_fields"],
    )
    if config.frequency_patches * config.time_patches != stored:
        raise CheckpointError(
            f"the M2D position table holds {stored} patches, not the {config.frequency_patches} x "
            f"{config.time_patches} of an 80 x 1001 input (the released SED model); other M2D input sizes are "
            "not part of PretrainedSED"
        )
    p = re.escape(prefix)
    rules = [
        (rf"{p}cls_token", "m2d.cls_token"),
        (rf"{p}pos_embed", "m2d.position_embeddings"),
        (rf"{p}patch_embed\.proj\.(weight|bias)", r"m2d.patch_embedding.conv.\1"),
        (rf"{p}norm\.(weight|bias)", r"m2d.layer_norm.\1"),
        *timm_block_rules(p, "m2d"),
    ]
    # norm_stats: M2D's own statistics, unused by the SED path (the feature extractor holds -7.1 / 4.2);
    # to_spec.*: nnAudio's STFT/mel buffers, recomputed by the feature extractor
    unused = [rf"{p}norm_stats", r"model\.to_spec\..*", timm_qkv_pattern(p)]
    stats = state_dict.get(prefix + "norm_stats")
    if stats is not None and not torch.allclose(stats.float(), torch.tensor([-7.1, 4.2]), atol=1e-4):
        logger.warning("the checkpoint's norm_stats %s differ from the constants the SED wrapper uses "
                       "(-7.1, 4.2); the feature extractor keeps the wrapper's", stats.tolist())
    weights = rename_keys(state_dict, rules, dropped=unused, source="M2D checkpoint")
    weights.update(split_timm_qkv(state_dict, p, "m2d", hidden))
    return M2dForAudioFrameClassification(config), M2dFeatureExtractor(), weights


def _build_frame_mn(state_dict: dict, options: dict):
    from ..models.frame_mn import (FrameMnConfig, FrameMnForAudioFrameClassification, PasstMelFeatureExtractor,
                                   width_from_state_dict)

    prefix = "model.frame_mn."
    width = options.get("width_mult") or width_from_state_dict(state_dict, prefix)
    config = FrameMnConfig(width_mult=width, **options["head_fields"])
    rules = [(r"model\.frame_mn\.(features\..*)", r"frame_mn.network.\1")]
    weights = rename_keys(state_dict, rules, source="frame-MobileNet checkpoint")
    return FrameMnForAudioFrameClassification(config), PasstMelFeatureExtractor(periodic_window=False), weights


# the SED wrapper's BEATsConfig defaults (the iter3 / AudioSet values); widths and heads come from the tensors
SED_BEATS_CFG = dict(
    input_patch_size=16, deep_norm=True, layer_norm_first=False, relative_position_embedding=True, num_buckets=320,
    max_distance=800, gru_rel_pos=True, conv_bias=False, activation_fn="gelu",
)


def _build_beats(state_dict: dict, options: dict):
    from ..models.beats import BeatsFeatureExtractor, BeatsForAudioFrameClassification
    from .beats import BeatsCheckpoint, config_from_original, convert_state_dict

    outside = sorted(key for key in state_dict if not key.startswith("model.model."))
    if outside:
        raise CheckpointError(f"BEATs SED checkpoint has weights outside model.model.: {outside[:10]}")
    encoder = {key.removeprefix("model.model."): value for key, value in state_dict.items()}
    positional = encoder.get("encoder.pos_conv.0.parametrizations.weight.original1", encoder.get("encoder.pos_conv.0.weight_v"))
    if positional is None or "patch_embedding.weight" not in encoder:
        raise CheckpointError("BEATs SED checkpoint lacks the patch embedding or the weight-normed positional conv "
                              "(model.model.encoder.pos_conv.0.{parametrizations.weight.original0/1 | weight_g/v})")
    hidden = encoder["post_extract_proj.weight"].shape[0]
    cfg = dict(
        SED_BEATS_CFG,
        input_patch_size=encoder["patch_embedding.weight"].shape[-1],
        embed_dim=encoder["patch_embedding.weight"].shape[0],
        encoder_embed_dim=hidden,
        encoder_ffn_embed_dim=encoder["encoder.layers.0.fc1.weight"].shape[0],
        encoder_layers=1 + max(int(m.group(1)) for k in encoder if (m := re.match(r"encoder\.layers\.(\d+)\.", k))),
        encoder_attention_heads=options.get("num_attention_heads") or encoder["encoder.layers.0.self_attn.grep_a"].shape[1],
        conv_pos=positional.shape[-1],
        conv_pos_groups=hidden // positional.shape[1],
        num_buckets=encoder["encoder.layers.0.self_attn.relative_attention_bias.weight"].shape[0],
    )
    config = config_from_original(BeatsCheckpoint("pretrained", cfg, encoder, None))
    head_fields = options["head_fields"]
    config.sed_head = {**head_fields["sed_head"], "input_sequence": "tokens"}
    config.id2label, config.label2id = head_fields["id2label"], head_fields["label2id"]
    weights = convert_state_dict(BeatsCheckpoint("finetuned", cfg, encoder, None), config)
    return BeatsForAudioFrameClassification(config), BeatsFeatureExtractor(), weights


FAMILIES: dict[str, SedFamily] = {
    "ATST-F": SedFamily(("model.atst.",), _build_atst),
    "fpasst": SedFamily(("model.",), _build_fpasst),
    "ASIT": SedFamily(("model.",), _build_asit),
    "M2D": SedFamily(("model.backbone.", "model.to_spec."), _build_m2d),
    "frame_mn": SedFamily(("model.frame_mn.",), _build_frame_mn),
    "BEATs": SedFamily(("model.model.",), _build_beats),
}


def _family_for(model_name: str) -> tuple[str, SedFamily]:
    if model_name not in MODEL_NAMES:
        raise ValueError(f"unknown PretrainedSED model name {model_name!r}; expected one of {MODEL_NAMES}")
    key = "frame_mn" if model_name.startswith("frame_mn") else model_name
    return key, FAMILIES[key]


def read_sed_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    checkpoint = load_torch_checkpoint(path)
    if not isinstance(checkpoint, dict) or not checkpoint or not all(
        isinstance(value, torch.Tensor) for value in checkpoint.values()
    ):
        found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(
            f"{path} is not a PretrainedSED checkpoint: expected a flat state dict of tensors "
            f"(PredictionsWrapper.state_dict()), found {found}"
        )
    return dict(checkpoint)


def _head_fields(state_dict: dict, num_labels: int | None, head_type: str, labels: list[str] | None) -> tuple[dict, list[str]]:
    """Config fields of the head and the head keys to drop (other class count or absent), as the original."""
    stored = state_dict["strong_head.weight"].shape[0] if "strong_head.weight" in state_dict else None
    num_labels = num_labels or stored or 447
    settings: dict = {"head_type": head_type}
    if "seq_model.rnn.weight_hh_l0" in state_dict:
        rnn_dim = state_dict["seq_model.rnn.weight_hh_l0"].shape[1]
        gates = state_dict["seq_model.rnn.weight_ih_l0"].shape[0] // rnn_dim
        layers = 1 + max(int(m.group(1)) for k in state_dict if (m := re.match(r"seq_model\.rnn\.weight_ih_l(\d+)$", k)))
        settings.update(seq_model_type="rnn", rnn_type="BiLSTM" if gates == 4 else "BiGRU", rnn_dim=rnn_dim,
                        rnn_layers=layers)
    weak = state_dict.get("weak_head.weight")
    if weak is not None and weak.shape[0] != num_labels and stored == num_labels and head_type == "linear":
        settings["num_weak_labels"] = weak.shape[0]
    SedHeadSettings.from_dict(settings)
    if labels is None:
        labels = dataset_labels("audioset_strong")[0] if num_labels == 447 else [f"LABEL_{i}" for i in range(num_labels)]
    if len(labels) != num_labels:
        raise ValueError(f"{len(labels)} label names given for {num_labels} classes")
    fields = dict(sed_head=settings, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    return fields, [stored is not None and stored == num_labels]


def _head_weights(state_dict: dict, model) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Head and sequence-model weights renamed to `sed_head.*`; heads of another size are left out (reported)."""
    expected = model.state_dict()
    weights, dropped = {}, []
    for key, tensor in state_dict.items():
        if not key.startswith(("strong_head.", "weak_head.", "seq_model.")):
            continue
        target = "sed_head." + key
        if target in expected and expected[target].shape != tensor.shape and key.startswith(("strong_head.", "weak_head.")):
            dropped.append(f"{key} {tuple(tensor.shape)} (model: {tuple(expected[target].shape)})")
            continue
        weights[target] = tensor
    return weights, dropped


def convert_pretrained_sed_checkpoint(
    checkpoint_path: str | Path,
    model_name: str,
    *,
    num_labels: int | None = None,
    labels: list[str] | None = None,
    head_type: str = "linear",
    num_attention_heads: int | None = None,
    width_mult: float | None = None,
):
    """Original file -> (frame classifier in eval mode, its feature extractor).

    Args:
        model_name: the release name (BEATs, ATST-F, fpasst, ASIT, M2D, frame_mn06, frame_mn10).
        num_labels: classes of the strong head (default: the file's, or 447 when it has no heads).
        labels: class names (default: the 447 AudioSet-strong names for 447 classes, LABEL_i otherwise).
        head_type: "linear" (released students) or "attention" (DESED-style; not readable from the weights).
        num_attention_heads: default hidden_size // 64 (12 for every released transformer).
        width_mult: frame-MobileNet width (default: read from the tensor shapes).
    """
    family_key, family = _family_for(model_name)
    state_dict = read_sed_state_dict(checkpoint_path)
    state_dict = _normalise_prefixes(state_dict, family_key)
    signature = {"fpasst": "model.conv_in_1.weight", "ASIT": "model.pos_embed"}.get(family_key)
    found = signature in state_dict if signature else any(k.startswith(family.prefixes[0]) for k in state_dict)
    if not found:
        prefixes = sorted({".".join(key.split(".")[:2]) + "." for key in state_dict})[:8]
        raise CheckpointError(
            f"{checkpoint_path} holds no {model_name} weights under {list(family.prefixes)} (its keys start with "
            f"{prefixes}); check --model_name"
        )
    fields, _ = _head_fields(state_dict, num_labels, head_type, labels)
    options = dict(head_fields=fields, num_attention_heads=num_attention_heads, width_mult=width_mult)
    encoder_state = {k: v for k, v in state_dict.items() if not k.startswith(("strong_head.", "weak_head.", "seq_model."))}
    model, feature_extractor, weights = family.build(encoder_state, options)
    head_weights, dropped = _head_weights(state_dict, model)
    weights.update(head_weights)
    missing_heads = sorted(k for k in model.state_dict() if k.startswith("sed_head.") and k not in weights)
    if missing_heads:
        reason = f"the file's heads have another size: {dropped}" if dropped else "the file has no such heads"
        logger.warning("initialising %s freshly: %s (as the original loader does)", missing_heads, reason)
        current = model.state_dict()
        weights.update({key: current[key] for key in missing_heads})
    load_state_dict_strictly(model, weights, source=str(checkpoint_path))
    return model.eval(), feature_extractor


# released (paper-training) prefixes and the original loader's renamed ones -> the released layout
RENAMED_PREFIXES = {
    "fpasst": ("model.fpasst.", "model."),
    "ASIT": ("model.asit.", "model."),
    "M2D": ("model.m2d.", "model."),
    "BEATs": ("model.beats.", "model.model."),
}


def _normalise_prefixes(state_dict: dict, family_key: str) -> dict:
    """Accept files saved after the original loader's renaming by mapping them back to the released layout."""
    if family_key not in RENAMED_PREFIXES:
        return state_dict
    renamed, released = RENAMED_PREFIXES[family_key]
    if not any(key.startswith(renamed) for key in state_dict):
        return state_dict
    return {(released + key[len(renamed):] if key.startswith(renamed) else key): value for key, value in state_dict.items()}


def convert_and_save(checkpoint_path: str | Path, output_dir: str | Path, model_name: str, *,
                     push_to_hub: str | None = None, **options) -> Path:
    """Convert a released PretrainedSED file (`model_name` says which model it holds) and write the folder."""
    from .output import convert_and_save_with

    return convert_and_save_with(convert_pretrained_sed_checkpoint, checkpoint_path, output_dir, push_to_hub=push_to_hub, model_name=model_name,
                                 **options)


__all__ = ["MODEL_NAMES", "RELEASE_URL", "convert_and_save", "convert_pretrained_sed_checkpoint", "read_sed_state_dict"]
