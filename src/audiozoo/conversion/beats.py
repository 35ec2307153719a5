"""Original BEATs checkpoints (microsoft/unilm `beats/`) -> audiozoo models.

Handles the three released kinds, all `torch.save` dicts {'cfg': dict, 'model': state_dict[, 'label_dict']}:
pre-trained encoders (BEATs_iter*.pt), AudioSet fine-tuned classifiers (*_finetuned_on_AS2M_cpt*.pt, with
`predictor.*` and a `label_dict` of MIDs) and acoustic tokenizers (Tokenizer_iter*.pt, with `quantize*`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.labels import names_for_mids
from ..models.beats import (
    BeatsTokenizerModel,
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsForAudioClassification,
    BeatsModel,
    BeatsTokenizerConfig,
)
from ..models.beats.configuration_beats import ORIGINAL_FIELD_NAMES
from .common import CheckpointError, load_state_dict_strictly, load_torch_checkpoint, rename_keys

logger = logging.getLogger(__name__)

# The original config classes' own defaults, used for fields a checkpoint's cfg omits (the released
# tokenizers omit layer_wise_gradient_decay_ratio, for instance).
ORIGINAL_DEFAULTS: dict[str, object] = {
    "input_patch_size": -1,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_wise_gradient_decay_ratio": 1.0,
    "layer_norm_first": False,
    "deep_norm": False,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
    "finetuned_model": False,
    "predictor_dropout": 0.1,
    "predictor_class": 527,
    "quant_n": 1024,
    "quant_dim": 256,
}

ENCODER_RULES: list[tuple[str, str]] = [
    (r"patch_embedding\.(weight|bias)", r"patch_embedding.conv.\1"),
    (r"layer_norm\.(weight|bias)", r"patch_embedding.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"patch_embedding.projection.\1"),
    # weight norm: the legacy spelling (weight_g / weight_v) and torch's parametrization spelling
    (r"encoder\.pos_conv\.0\.weight_g", r"encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", r"encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (
        r"encoder\.pos_conv\.0\.parametrizations\.weight\.original([01])",
        r"encoder.pos_conv_embed.conv.parametrizations.weight.original\1",
    ),
    (r"encoder\.pos_conv\.0\.(weight|bias)", r"encoder.pos_conv_embed.conv.\1"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.0\.self_attn\.relative_attention_bias\.weight",
     r"encoder.relative_position_bias.relative_attention_bias.weight"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(weight|bias)", r"encoder.layers.\1.attention.gate_proj.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn\.grep_a", r"encoder.layers.\1.attention.gate_scale"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.attention_layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc([12])\.(weight|bias)", r"encoder.layers.\1.feed_forward.fc\2.\3"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
]
# copies of layer 0's table held by layers 1..L-1 (checked equal, then dropped)
SHARED_BIAS_COPIES = r"encoder\.layers\.([1-9]\d*)\.self_attn\.relative_attention_bias\.weight"
CLASSIFIER_RULES = [(r"predictor\.(weight|bias)", r"classifier.\1")]
TOKENIZER_RULES = [
    (r"quantize_layer\.([02])\.(weight|bias)", r"quantizer_projection.\1.\2"),
    (r"quantize\.embedding\.weight", r"quantizer.codebook"),
    (r"quantize\.embedding\.cluster_size", r"quantizer.ema_cluster_size"),
    (r"quantize\.embedding\.embed_avg", r"quantizer.ema_embed_sum"),
    (r"quantize\.cluster_size", r"quantizer.usage_count"),
]
KIND_CLASSES = {"pretrained": BeatsModel, "finetuned": BeatsForAudioClassification, "tokenizer": BeatsTokenizerModel}


@dataclass
class BeatsCheckpoint:
    """An original checkpoint, read and classified."""

    kind: str  # "pretrained" | "finetuned" | "tokenizer"
    cfg: dict
    state_dict: dict[str, torch.Tensor]
    label_dict: dict[int, str] | None


def read_beats_checkpoint(path: str | Path) -> BeatsCheckpoint:
    """Read an original BEATs / tokenizer file and tell which kind it is, or say why it is not one."""
    checkpoint = load_torch_checkpoint(path)
    if not isinstance(checkpoint, dict) or "cfg" not in checkpoint or "model" not in checkpoint:
        found = sorted(checkpoint)[:10] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(
            f"{path} is not a BEATs checkpoint: expected a dict with 'cfg' (config dict) and 'model' (state dict) "
            f"as microsoft/unilm writes them, found {found}"
        )
    cfg, state_dict = checkpoint["cfg"], checkpoint["model"]
    if not isinstance(cfg, dict) or not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: 'cfg' and 'model' must be dicts, got {type(cfg).__name__}/{type(state_dict).__name__}")
    required = ("patch_embedding.weight", "encoder.pos_conv.0.bias", "encoder.layer_norm.weight")
    absent = [key for key in required if key not in state_dict]
    if absent:
        sample = sorted(state_dict)[:5]
        raise CheckpointError(
            f"{path} is not a BEATs checkpoint: its state dict lacks {absent} (first keys: {sample}); "
            "expected the microsoft/unilm BEATs layout (no 'module.' prefix)"
        )
    if any(key.startswith("quantize") for key in state_dict):
        kind = "tokenizer"
    elif any(key.startswith("predictor.") for key in state_dict) or cfg.get("finetuned_model", False):
        kind = "finetuned"
    else:
        kind = "pretrained"
    return BeatsCheckpoint(kind, cfg, state_dict, checkpoint.get("label_dict"))


def config_from_original(checkpoint: BeatsCheckpoint, fold_weight_norm: bool = False) -> BeatsConfig:
    """Map every original cfg field to ours; fields the cfg omits take the original class defaults."""
    cfg = {**ORIGINAL_DEFAULTS, **checkpoint.cfg}
    unknown = sorted(set(checkpoint.cfg) - set(ORIGINAL_DEFAULTS))
    if unknown:
        logger.warning("ignoring cfg fields unknown to the original BEATs code: %s", unknown)
    if cfg["input_patch_size"] <= 0:
        raise CheckpointError(f"cfg input_patch_size must be positive, got {cfg['input_patch_size']}")
    values = {ours: cfg[original] for original, ours in ORIGINAL_FIELD_NAMES.items()}
    values["conv_pos_weight_norm"] = not fold_weight_norm
    if checkpoint.kind == "tokenizer":
        return BeatsTokenizerConfig(**values)
    for field in ("codebook_size", "codebook_dim"):
        values.pop(field)
    if checkpoint.kind == "finetuned":
        num_classes = int(cfg["predictor_class"])
        mids = _label_mids(checkpoint.label_dict, num_classes)
        values.update(
            id2label=dict(enumerate(names_for_mids(mids))) if mids else {i: f"LABEL_{i}" for i in range(num_classes)},
            label_mids=mids,
            problem_type="multi_label_classification",
        )
    return BeatsConfig(**values)


def _label_mids(label_dict: dict | None, num_classes: int) -> list[str] | None:
    if label_dict is None:
        logger.warning("fine-tuned checkpoint has no label_dict; labels will be LABEL_<i>")
        return None
    if sorted(int(index) for index in label_dict) != list(range(num_classes)):
        raise CheckpointError(f"label_dict must map 0..{num_classes - 1} to MIDs, got indices {sorted(label_dict)[:10]}...")
    return [str(label_dict[index]) for index in range(num_classes)]


def convert_state_dict(checkpoint: BeatsCheckpoint, config: BeatsConfig) -> dict[str, torch.Tensor]:
    """Rename the original weights to ours; the shared relative-position table is taken once."""
    state_dict = dict(checkpoint.state_dict)
    table_key = "encoder.layers.0.self_attn.relative_attention_bias.weight"
    for key in [key for key in state_dict if key.endswith("relative_attention_bias.weight") and key != table_key]:
        if table_key in state_dict and not torch.equal(state_dict[key], state_dict[table_key]):
            raise CheckpointError(f"{key} differs from layer 0's relative position table, which all layers share")
    dropped = [SHARED_BIAS_COPIES]
    if checkpoint.kind == "tokenizer":
        initted = state_dict.get("quantize.embedding.initted")
        if initted is not None and not bool(initted.bool().all()):
            raise CheckpointError("tokenizer codebook was never initialised (quantize.embedding.initted == 0)")
        dropped.append(r"quantize\.embedding\.initted")
    rules = list(ENCODER_RULES)
    if checkpoint.kind == "finetuned":
        rules = [(pattern, "beats." + target) for pattern, target in rules] + CLASSIFIER_RULES
    elif checkpoint.kind == "tokenizer":
        rules = [(pattern, "beats." + target) for pattern, target in rules] + TOKENIZER_RULES
    renamed = rename_keys(state_dict, rules, dropped=dropped, source="BEATs checkpoint")
    if not config.conv_pos_weight_norm:
        renamed = _fold_positional_weight_norm(renamed)
    return renamed


def _fold_positional_weight_norm(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """weight = g * v / ||v|| with the norm over all dims but the kernel tap (weight_norm dim=2)."""
    folded = {}
    for key, tensor in state_dict.items():
        if key.endswith("parametrizations.weight.original1"):
            prefix = key[: -len("parametrizations.weight.original1")]
            magnitude = state_dict[prefix + "parametrizations.weight.original0"]
            folded[prefix + "weight"] = torch._weight_norm(tensor, magnitude, 2)
        elif not key.endswith("parametrizations.weight.original0"):
            folded[key] = tensor
    return folded


def convert_beats_checkpoint(
    checkpoint_path: str | Path, fold_weight_norm: bool = False
) -> tuple[BeatsModel | BeatsForAudioClassification | BeatsTokenizerModel, BeatsFeatureExtractor]:
    """Original file -> (model in eval mode with every weight loaded strictly, feature extractor)."""
    checkpoint = read_beats_checkpoint(checkpoint_path)
    config = config_from_original(checkpoint, fold_weight_norm)
    model = KIND_CLASSES[checkpoint.kind](config)
    load_state_dict_strictly(model, convert_state_dict(checkpoint, config), source=str(checkpoint_path))
    logger.info("converted %s BEATs checkpoint %s", checkpoint.kind, checkpoint_path)
    feature_extractor = BeatsFeatureExtractor(
        sampling_rate=config.sampling_rate, num_mel_bins=config.num_mel_bins, min_frames=config.patch_size
    )
    return model.eval(), feature_extractor


def convert_and_save(checkpoint_path: str | Path, output_dir: str | Path, *, push_to_hub: str | None = None,
                     **options) -> Path:
    """Convert and write the folder (weights, configs, model card, remote code), verified by reloading it."""
    from .output import convert_and_save_with

    return convert_and_save_with(convert_beats_checkpoint, checkpoint_path, output_dir, push_to_hub=push_to_hub, **options)
