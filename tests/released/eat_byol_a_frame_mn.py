"""EAT, BYOL-A and frame-MobileNet: converted models written back in the original containers, and the released sizes.

Sizes and layouts follow shared/research/eat.md, byol_a.md and pretrained_sed_a.md; the parity cases
(tests/fixtures/parity/{eat_tiny_*, byola_*, sed_frame_mn06}) are files the original code wrote.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from audiozoo.conversion.common import load_torch_checkpoint, rename_keys
from audiozoo.conversion.fairseq import load_fairseq_checkpoint
from audiozoo.data.labels import audioset_mid_to_name, dataset_labels
from audiozoo.models.byol_a import ByolAConfig, ByolAModel
from audiozoo.models.eat import EatConfig, EatForAudioClassification, EatModel
from audiozoo.models.frame_mn import FrameMnConfig, FrameMnForAudioFrameClassification

from .common import Release, perturb_

# ------------------------------------------------------------------------------------------------------------------
# EAT: fairseq trainer checkpoints (checkpoint_utils.save_state), cfg stored as a plain nested dict
# (OmegaConf.to_container), which is how the parity files pickle it: no config objects, so no stand-in classes.

ENCODER = "modality_encoders.IMAGE."
EAT_EMBEDDINGS = (  # ImageEncoder's tensors in their state-dict order -> the converted model's `embeddings.*`
    ("extra_tokens", "cls_token"),
    ("local_encoder.proj.weight", "patch_embedding.conv.weight"),
    ("local_encoder.proj.bias", "patch_embedding.conv.bias"),
    ("fixed_positional_encoder.positions", "position_embeddings"),
    ("context_encoder.norm.weight", "layer_norm.weight"),
    ("context_encoder.norm.bias", "layer_norm.bias"),
)
EAT_BLOCK = (  # AltBlock's layers in their state-dict order -> the converted layer's parts (qkv: rows q, k, v)
    ("norm1", ("attention_norm",)),
    ("attn.qkv", ("attention.q_proj", "attention.k_proj", "attention.v_proj")),
    ("attn.proj", ("attention.out_proj",)),
    ("norm2", ("mlp_norm",)),
    ("mlp.fc1", ("mlp.fc1",)),
    ("mlp.fc2", ("mlp.fc2",)),
)
EAT_HEAD = (("fc_norm", "classifier.layer_norm"), ("head", "classifier.dense"))  # MaeImageClassificationModel
EAT_KEPT = ("args", "cfg", "model", "criterion", "task_state")
"""The checkpoint entries a converted model determines. Left out: optimizer_history, extra_state (update count,
data-iterator position, metrics) and last_optimizer_state are training state, not part of the model."""
FAIRSEQ_NORM_EPS = 1e-6
"""fc_norm's eps when the fine-tuning cfg leaves norm_eps at its default None (the conversion reads
`norm_eps or 1e-6`)."""


def _eat_encoder_weights(
    weights: dict[str, torch.Tensor], prefix: str, layers: int
) -> Iterator[tuple[str, torch.Tensor]]:
    """The student encoder under its original names, in Data2VecMultiModel's order (the converted model orders the
    embeddings and block parts differently, so the names are listed, not renamed)."""
    for original, ours in EAT_EMBEDDINGS:
        yield ENCODER + original, weights[f"{prefix}embeddings.{ours}"]
    for index in range(layers):
        for original, parts in EAT_BLOCK:
            for kind in ("weight", "bias"):
                tensors = [weights[f"{prefix}layers.{index}.{part}.{kind}"] for part in parts]
                yield f"blocks.{index}.{original}.{kind}", torch.cat(tensors)


def _eat_weights(model: EatModel | EatForAudioClassification) -> OrderedDict[str, torch.Tensor]:
    """`model` of the checkpoint: the bare encoder (pre-trained), or `model.` + encoder, fc_norm, head (fine-tuned)."""
    weights = model.state_dict()
    if isinstance(model, EatModel):
        return OrderedDict(_eat_encoder_weights(weights, "", model.config.num_hidden_layers))
    encoder = _eat_encoder_weights(weights, "eat.", model.config.num_hidden_layers)
    head = [(f"{original}.{kind}", weights[f"{ours}.{kind}"])
            for original, ours in EAT_HEAD for kind in ("weight", "bias")]
    return OrderedDict([(f"model.{key}", tensor) for key, tensor in encoder] + head)


def _eat_encoder_cfg(config: EatConfig) -> dict:
    """The pre-training cfg.model (Data2VecMultiConfig) fields the conversion reads, in fairseq's field order."""
    return {
        "_name": "data2vec_multi",
        "depth": config.num_hidden_layers,
        "num_heads": config.num_attention_heads,
        "norm_eps": config.layer_norm_eps,
        "embed_dim": config.hidden_size,
        "mlp_ratio": config.intermediate_size / config.hidden_size,
        "layer_norm_first": False,  # post-LN: the only kind EAT releases (and the conversion) have
        "modalities": {
            "image": {"prenet_depth": 0, "patch_size": config.patch_size, "target_length": config.max_length},
        },
    }


def _eat_cfg(config: EatConfig, finetuned: bool) -> dict:
    """cfg as the conversion reads it: cfg.model is the encoder's config, or (fine-tuned) MaeImageClassificationConfig
    with the encoder's under pretrained_model_args.model."""
    if not finetuned:
        return {"model": _eat_encoder_cfg(config)}
    norm_eps = None if config.classifier_layer_norm_eps == FAIRSEQ_NORM_EPS else config.classifier_layer_norm_eps
    return {"model": {
        "_name": "mae_image_classification",
        "pretrained_model_args": {"model": _eat_encoder_cfg(config)},
        "norm_eps": norm_eps,
        "prediction_mode": "CLS_TOKEN",
    }}


def _eat_task_state(model: EatModel | EatForAudioClassification) -> dict:
    """Fine-tuned: the task's label dictionary {MID: "index"} (the converted names mapped back to AudioSet MIDs; a
    name the conversion kept as it was stays); pre-trained: empty."""
    if isinstance(model, EatModel):
        return {}
    mids = {name: mid for mid, name in audioset_mid_to_name().items()}
    return {"labels": {mids.get(name, name): str(index) for index, name in sorted(model.config.id2label.items())}}


def write_eat(model: EatModel | EatForAudioClassification) -> dict:
    """The fairseq checkpoint of a converted EAT model, reduced to EAT_KEPT (the conversion reads nothing else)."""
    finetuned = isinstance(model, EatForAudioClassification)
    return {"args": None, "cfg": _eat_cfg(model.config, finetuned), "model": _eat_weights(model), "criterion": None,
            "task_state": _eat_task_state(model)}


def _subset(original: dict, template: dict) -> dict:
    """The entries of `original` (in its order) whose keys `template` has, nested dicts likewise."""
    return {key: _subset(value, template[key]) if isinstance(template[key], dict) and isinstance(value, dict) else value
            for key, value in original.items() if key in template}


def _student(weights: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """The checkpoint's weights without `_ema` (the EMA teacher, a nested dict) and the pre-training CNN decoder:
    the conversion converts the student encoder only, so a converted model cannot give them back."""
    return OrderedDict((key, value) for key, value in weights.items()
                       if key != "_ema" and not key.startswith(ENCODER + "decoder."))


def read_eat(path: Path) -> dict:
    """The original file, through the package's restricted fairseq reader (no fairseq needed), reduced to what a
    converted model determines: EAT_KEPT entries, the cfg fields the conversion reads (`_eat_cfg`'s; the rest of the
    FairseqConfig, e.g. optimisation, dataset or masking settings, is not part of a converted model) and the student
    weights."""
    checkpoint = load_fairseq_checkpoint(path)
    finetuned = checkpoint["cfg"]["model"]["_name"] == "mae_image_classification"
    kept = {key: value for key, value in checkpoint.items() if key in EAT_KEPT}
    kept["cfg"] = _subset(kept["cfg"], _eat_cfg(EatConfig(), finetuned))
    kept["model"] = _student(kept["model"])
    return kept


# ------------------------------------------------------------------------------------------------------------------
# BYOL-A: train.py / train_v2.py torch.save(model.state_dict()) of AudioNTT2020 / AudioNTT2022, no wrapper.


def write_byol_a(model: ByolAModel) -> OrderedDict[str, torch.Tensor]:
    """features.{4i} conv and features.{4i+1} BatchNorm of block i, fc.0 / fc.3 the MLP's Linear layers."""
    blocks = range(model.config.num_conv_blocks)
    rules = [(rf"conv_blocks\.{i}\.conv\.(.*)", rf"features.{4 * i}.\1") for i in blocks]
    rules += [(rf"conv_blocks\.{i}\.norm\.(.*)", rf"features.{4 * i + 1}.\1") for i in blocks]
    rules += [(r"fc1\.(.*)", r"fc.0.\1"), (r"fc2\.(.*)", r"fc.3.\1")]
    return OrderedDict(rename_keys(model.state_dict(), rules, source="converted BYOL-A model"))


# ------------------------------------------------------------------------------------------------------------------
# frame-MobileNet (PretrainedSED frame_mn*_strong_1.pt): PredictionsWrapper.state_dict() as a plain dict.


def write_frame_mn(model: FrameMnForAudioFrameClassification) -> dict[str, torch.Tensor]:
    """The encoder under model.frame_mn. (BatchNorm statistics included), the heads at the top level."""
    rules = [(r"frame_mn\.network\.(.*)", r"model.frame_mn.\1"), (r"sed_head\.(.*)", r"\1")]
    return rename_keys(model.state_dict(), rules, source="converted frame-MobileNet model")


# BYOL-A and PretrainedSED files are plain state dicts: every entry is comparable, so they are read as they are.
PARITY_LAYOUTS: dict[str, tuple[Callable[[torch.nn.Module], object], Callable[[Path], object]]] = {
    "eat_tiny_pretrained": (write_eat, read_eat),
    "eat_tiny_finetuned": (write_eat, read_eat),
    "byola_v1_d512": (write_byol_a, load_torch_checkpoint),
    "byola_v2_d3072": (write_byol_a, load_torch_checkpoint),
    "sed_frame_mn06": (write_frame_mn, load_torch_checkpoint),
}

# ------------------------------------------------------------------------------------------------------------------
# Released sizes (research notes): EAT base 768 x 12 blocks x 12 heads, large 1024 x 24 x 16, 1024-frame input and the
# current code's 768 x 8 position rows; BYOL-A v1 d = MLP width = 512/1024/2048, v2 an MLP of 2048 on 1024 conv
# features (output 3072); frame-MobileNet width 0.6 / 1.0 with linear 447-class strong and weak heads.

EAT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
EAT_LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}
EAT_INPUT = {"max_length": 1024, "num_positions": 6144}
BYOL_A_V2 = {"version": 2, "num_conv_blocks": 2, "hidden_size": 3072, "mlp_hidden_size": 2048}
# README example statistics, passed as a user would (the conversion needs some; they only reach the feature extractor)
BYOL_A_V1_STATS = ("-5.4919195", "5.0389895")
BYOL_A_V2_STATS = ("-9.660292", "4.7219563")


def _labelled(names: list[str], **fields) -> dict:
    """Config fields for a classifier over `names`."""
    return {**fields, "id2label": dict(enumerate(names)), "label2id": {name: index for index, name in enumerate(names)}}


def _eat(size: dict, finetuned: bool, seed: int) -> Callable[[], torch.nn.Module]:
    """EAT at `size`; fine-tuned: the 527 AudioSet classes, multi-label."""
    def build() -> torch.nn.Module:
        if not finetuned:
            return perturb_(EatModel(EatConfig(**size, **EAT_INPUT)), seed)
        labels = _labelled(dataset_labels("audioset")[0], problem_type="multi_label_classification")
        return perturb_(EatForAudioClassification(EatConfig(**size, **EAT_INPUT, **labels)), seed)
    return build


def _byol_a(fields: dict, seed: int) -> Callable[[], torch.nn.Module]:
    """A BYOL-A encoder with the ByolAConfig `fields` (version, conv blocks, d, MLP width)."""
    def build() -> torch.nn.Module:
        return perturb_(ByolAModel(ByolAConfig(**fields)), seed)
    return build


def _frame_mn(width: float, seed: int) -> Callable[[], torch.nn.Module]:
    """frame-MobileNet at `width` with the linear strong and weak heads over the 447 AudioSet-strong classes."""
    def build() -> torch.nn.Module:
        fields = _labelled(dataset_labels("audioset_strong")[0], sed_head={"head_type": "linear"})
        return perturb_(FrameMnForAudioFrameClassification(FrameMnConfig(width_mult=width, **fields)), seed)
    return build


def _eat_release(name: str, filename: str, size: dict, finetuned: bool, seed: int) -> Release:
    """An EAT release; the converted folder must have its size, input length, position rows (and 527 classes)."""
    expect = {**size, **EAT_INPUT, **({"num_labels": 527} if finetuned else {})}
    return Release(name, "eat", filename, _eat(size, finetuned, seed), write_eat, expect=expect)


def _byol_a_release(name: str, filename: str, fields: dict, stats: tuple[str, str], seed: int) -> Release:
    """A BYOL-A release converted with the normalisation `stats`; the converted config must have `fields`."""
    return Release(name, "byol_a", filename, _byol_a(fields, seed), write_byol_a, ("--norm_stats", *stats),
                   expect=fields)


def _byol_a_v1_release(d: int, seed: int) -> Release:
    """AudioNTT2020 with output (and MLP) width `d`."""
    fields = {"version": 1, "num_conv_blocks": 3, "hidden_size": d, "mlp_hidden_size": d}
    return _byol_a_release(f"byol-a-v1-d{d}", f"AudioNTT2020-BYOLA-64x96d{d}.pth", fields, BYOL_A_V1_STATS, seed)


def _frame_mn_release(tag: str, width: float, seed: int) -> Release:
    """frame_{tag}_strong_1.pt, converted with --model_name frame_{tag}."""
    return Release(f"pretrainedsed-frame-{tag}-strong", "pretrained_sed", f"frame_{tag}_strong_1.pt",
                   _frame_mn(width, seed), write_frame_mn, ("--model_name", f"frame_{tag}"),
                   expect={"width_mult": width, "num_labels": 447})


# EAT file names: the Drive files' names are not known offline; these follow the authors' Hub repositories (the
# conversion does not read the name).
RELEASES: list[Release] = [
    # also covers eat-base-epoch10-pretrained (epochs 10 and 30 are the same architecture)
    _eat_release("eat-base-epoch30-pretrained", "EAT-base_epoch30_pretrain.pt", EAT_BASE, False, 61),
    # also covers eat-base-epoch10-finetuned-as2m and eat-base-epoch10-finetuned-as20k
    _eat_release("eat-base-epoch30-finetuned-as2m", "EAT-base_epoch30_finetune_AS2M.pt", EAT_BASE, True, 62),
    _eat_release("eat-large-epoch20-pretrained", "EAT-large_epoch20_pretrain.pt", EAT_LARGE, False, 63),
    _eat_release("eat-large-epoch20-finetuned-as2m", "EAT-large_epoch20_finetune_AS2M.pt", EAT_LARGE, True, 64),
    _byol_a_v1_release(512, 65),
    _byol_a_v1_release(1024, 66),
    _byol_a_v1_release(2048, 67),
    # the file name says d2048 (the MLP's width); the output is 3072
    _byol_a_release("byol-a-v2-d3072", "AudioNTT2022-BYOLA-64x96d2048.pth", BYOL_A_V2, BYOL_A_V2_STATS, 68),
    _frame_mn_release("mn06", 0.6, 69),
    _frame_mn_release("mn10", 1.0, 70),
]
