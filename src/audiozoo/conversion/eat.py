"""Original EAT checkpoints (fairseq, cwx-worst-one/EAT) -> audiozoo EAT models.

Pre-trained files (`cfg.model._name == "data2vec_multi"`) give an [`EatModel`]; fine-tuned ones
(`mae_image_classification`, encoder config under `cfg.model.pretrained_model_args.model`) an
[`EatForAudioClassification`]. The student weights are used (as EAT's feature extraction does); the EMA teacher
(`_ema`) and the pre-training decoder are left out, and the log says so.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path


from ..data.labels import audioset_mid_to_name
from ..models.eat import EAT_PRESETS, EatConfig, EatFeatureExtractor, EatForAudioClassification, EatModel
from ..layers.vit import split_fused_qkv
from .common import CheckpointError, load_state_dict_strictly, rename_keys
from .fairseq import load_fairseq_checkpoint

logger = logging.getLogger(__name__)

ENCODER = "modality_encoders.IMAGE."
RULES: list[tuple[str, str]] = [
    (ENCODER.replace(".", r"\.") + r"extra_tokens", "embeddings.cls_token"),
    (ENCODER.replace(".", r"\.") + r"local_encoder\.proj\.(weight|bias)", r"embeddings.patch_embedding.conv.\1"),
    (ENCODER.replace(".", r"\.") + r"fixed_positional_encoder\.positions", "embeddings.position_embeddings"),
    (ENCODER.replace(".", r"\.") + r"context_encoder\.norm\.(weight|bias)", r"embeddings.layer_norm.\1"),
    (r"blocks\.(\d+)\.norm1\.(weight|bias)", r"layers.\1.attention_norm.\2"),
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", r"layers.\1.attention.out_proj.\2"),
    (r"blocks\.(\d+)\.norm2\.(weight|bias)", r"layers.\1.mlp_norm.\2"),
    (r"blocks\.(\d+)\.mlp\.fc([12])\.(weight|bias)", r"layers.\1.mlp.fc\2.\3"),
]
QKV = r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)"
PRE_TRAINING_ONLY = [ENCODER.replace(".", r"\.") + r"decoder\..*", r"_ema"]


def encoder_config(cfg: dict) -> tuple[dict, str]:
    """(the Data2VecMultiConfig dict that defines the encoder, the model kind) from a checkpoint's cfg."""
    model_cfg = (cfg or {}).get("model") or {}
    name = model_cfg.get("_name")
    if name == "data2vec_multi":
        return model_cfg, "pretrained"
    if name == "mae_image_classification":
        pretrained = model_cfg.get("pretrained_model_args") or {}
        if "model" not in pretrained:
            raise CheckpointError("fine-tuned EAT checkpoint lacks cfg.model.pretrained_model_args.model")
        return pretrained["model"], "finetuned"
    raise CheckpointError(
        f"not an EAT checkpoint: cfg.model._name is {name!r}, expected 'data2vec_multi' (pre-trained) or "
        "'mae_image_classification' (fine-tuned)"
    )


def convert_eat_checkpoint(
    checkpoint_path: str | Path, *, dataset: str = "audioset", max_length: int | None = None
) -> tuple[EatModel | EatForAudioClassification, EatFeatureExtractor]:
    """Original fairseq file -> (model in eval mode, loaded strictly; its feature extractor).

    Args:
        dataset: normalisation preset ("audioset", "esc50", "speechcommands").
        max_length: input frames (default: the checkpoint's target_length, else the preset's).
    """
    if dataset not in EAT_PRESETS:
        raise ValueError(f"unknown dataset preset {dataset!r}; expected one of {sorted(EAT_PRESETS)}")
    checkpoint = load_fairseq_checkpoint(checkpoint_path)
    encoder_cfg, kind = encoder_config(checkpoint["cfg"])
    state_dict = checkpoint["model"]
    if kind == "finetuned":
        state_dict = {
            (key[len("model."):] if key.startswith("model.") else key): value for key, value in state_dict.items()
        }
    image_cfg = (encoder_cfg.get("modalities") or {}).get("image") or {}
    hidden_size = int(encoder_cfg["embed_dim"])
    if image_cfg.get("prenet_depth", 0):
        raise CheckpointError(f"prenet_depth={image_cfg['prenet_depth']} is not supported (EAT releases use 0)")
    if encoder_cfg.get("layer_norm_first", False):
        raise CheckpointError("layer_norm_first=True EAT models are not supported (EAT releases are post-LN)")
    model_cfg = checkpoint["cfg"]["model"]
    target_length = image_cfg.get("target_length") or model_cfg.get("target_length")
    preset = EAT_PRESETS[dataset]
    max_length = max_length or int(target_length or preset["max_length"])
    positions = state_dict[ENCODER + "fixed_positional_encoder.positions"]
    values = dict(
        hidden_size=hidden_size,
        num_hidden_layers=int(encoder_cfg["depth"]),
        num_attention_heads=int(encoder_cfg["num_heads"]),
        intermediate_size=int(hidden_size * float(encoder_cfg.get("mlp_ratio", 4.0))),
        layer_norm_eps=float(encoder_cfg.get("norm_eps") or 1e-6),
        patch_size=int(image_cfg.get("patch_size", 16)),
        max_length=max_length,
        num_positions=positions.shape[1],
    )
    if kind == "finetuned":
        values.update(_labels(checkpoint.get("task_state") or {}, state_dict["head.weight"].shape[0]))
        values["classifier_layer_norm_eps"] = float(model_cfg.get("norm_eps") or 1e-6)
        if model_cfg.get("prediction_mode", "CLS_TOKEN") != "CLS_TOKEN":
            raise CheckpointError(f"prediction_mode {model_cfg.get('prediction_mode')!r} is not supported (CLS_TOKEN)")
    config = EatConfig(**values)

    prefix = "eat." if kind == "finetuned" else ""
    rules = [(pattern, prefix + target) for pattern, target in RULES]
    if kind == "finetuned":
        rules += [(r"fc_norm\.(weight|bias)", r"classifier.layer_norm.\1"), (r"head\.(weight|bias)", r"classifier.dense.\1")]
    dropped = PRE_TRAINING_ONLY + [QKV]
    left_out = [part for part, present in (("the EMA teacher (_ema)", "_ema" in state_dict),
                                           ("the CNN decoder", any(".decoder." in key for key in state_dict))) if present]
    if left_out:
        logger.info("left out pre-training parts: %s (the student encoder is converted)", ", ".join(left_out))
    renamed = rename_keys(state_dict, rules, dropped=dropped, source="EAT checkpoint")
    for key, tensor in state_dict.items():
        match = re.fullmatch(QKV, key)
        if match:
            parts = split_fused_qkv(tensor, hidden_size)
            for name, part in zip(("q_proj", "k_proj", "v_proj"), parts, strict=True):
                renamed[f"{prefix}layers.{match.group(1)}.attention.{name}.{match.group(2)}"] = part
    model = (EatForAudioClassification if kind == "finetuned" else EatModel)(config)
    load_state_dict_strictly(model, renamed, source=str(checkpoint_path))
    feature_extractor = EatFeatureExtractor(mean=preset["mean"], std=preset["std"], max_length=max_length)
    return model.eval(), feature_extractor


def _labels(task_state: dict, num_labels: int) -> dict:
    """id2label from the fine-tuned task's {mid: "index"} dictionary, MIDs mapped to AudioSet names."""
    labels = task_state.get("labels")
    if not labels:
        logger.warning("fine-tuned checkpoint has no task_state labels; labels will be LABEL_<i>")
        return {"id2label": {index: f"LABEL_{index}" for index in range(num_labels)}}
    by_index = {int(index): mid for mid, index in labels.items()}
    if sorted(by_index) != list(range(num_labels)):
        raise CheckpointError(f"task_state labels do not cover classes 0..{num_labels - 1}")
    names = audioset_mid_to_name()
    mids = [by_index[index] for index in range(num_labels)]
    return {
        "id2label": {index: names.get(mid, mid) for index, mid in enumerate(mids)},
        "problem_type": "multi_label_classification",
    }


def convert_and_save(checkpoint_path: str | Path, output_dir: str | Path, *, push_to_hub: str | None = None,
                     **options) -> Path:
    """Convert, then write the folder (weights, configs, remote code) and verify that it reloads."""
    from .output import convert_and_save_with

    return convert_and_save_with(convert_eat_checkpoint, checkpoint_path, output_dir, push_to_hub=push_to_hub, **options)
