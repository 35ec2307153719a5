"""BEATs, its acoustic tokenizer and the BEATs SED student: the original containers, written from converted models.

microsoft/unilm saves `{'cfg': dict, 'model': state_dict[, 'label_dict']}` (pre-trained encoders, AudioSet fine-tuned
classifiers, tokenizers); PretrainedSED saves the flat `PredictionsWrapper` state dict (BEATs under `model.model.`,
then `strong_head` / `weak_head`). The writers below are the inverse of audiozoo.conversion.beats and of
audiozoo.conversion.pretrained_sed's `_build_beats`; key names are spelled out here rather than derived from the
conversion's rules, so that the parity cases check the two against each other.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch

from audiozoo.data.labels import dataset_labels
from audiozoo.models.beats import (
    BeatsConfig,
    BeatsForAudioClassification,
    BeatsForAudioFrameClassification,
    BeatsModel,
    BeatsTokenizerConfig,
    BeatsTokenizerModel,
)
from audiozoo.models.beats.configuration_beats import ORIGINAL_FIELD_NAMES

from .common import Release, encoder_output, perturb_

# ---------------------------------------------------------------------------------------------------------------
# Released sizes

# The cfg of the released pre-trained files, in its key order (BEATs_iter3_plus_AS2M.pt, quoted field by field in
# research/beats.md section 1; iter1/iter2/iter3 share the architecture; the parity cases keep this order).
RELEASED_CFG: dict[str, object] = {
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.05,
    "dropout_input": 0.0,
    "layer_norm_first": False,
    "conv_bias": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "deep_norm": True,
    "input_patch_size": 16,
    "layer_wise_gradient_decay_ratio": 0.6,
    "embed_dim": 512,
}
# what the fine-tuned cfgs add, in BEATsConfig's order; predictor_dropout of the released files is not public (an
# eval no-op), 0.0 as in the parity case
FINETUNED_CFG: dict[str, object] = {"finetuned_model": True, "predictor_dropout": 0.0, "predictor_class": 527}
# what the tokenizer cfgs add (TokenizersConfig defaults; the released tokenizer cfgs are not public)
TOKENIZER_CFG: dict[str, object] = {"quant_n": 1024, "quant_dim": 256}
# TokenizersConfig has no such field (and no predictor fields): a tokenizer cfg never holds it
NOT_IN_TOKENIZER_CFG = "layer_wise_gradient_decay_ratio"

AUDIOSET_CLASSES = 527
AUDIOSET_STRONG_CLASSES = 447
# the students' PredictionsWrapper: linear heads on the encoder tokens
SED_HEAD = {"head_type": "linear", "input_sequence": "tokens"}


def _our_fields(cfg: dict[str, object]) -> dict[str, object]:
    """An original cfg's fields under our config names."""
    return {ORIGINAL_FIELD_NAMES[name]: value for name, value in cfg.items() if name in ORIGINAL_FIELD_NAMES}


def _audioset_mids() -> list[str]:
    """527 AudioSet MIDs for a label_dict (the released label_dict order is its own; any order serves here)."""
    return dataset_labels("audioset")[1]


# ---------------------------------------------------------------------------------------------------------------
# Key layout: (original key, our key) pairs in the original state-dict order, i.e. a module's own parameters first,
# then its submodules in the order they were registered.

UNILM_WEIGHT_NORM = ("weight_g", "weight_v")  # nn.utils.weight_norm (microsoft/unilm)
SED_WEIGHT_NORM = ("parametrizations.weight.original0", "parametrizations.weight.original1")  # PretrainedSED
RELATIVE_TABLE = "encoder.relative_position_bias.relative_attention_bias.weight"
POSITIONAL_CONV = "encoder.pos_conv_embed.conv."

Pairs = list[tuple[str, str | torch.Tensor]]


def _weight_and_bias(original: str, ours: str) -> Pairs:
    return [(f"{original}.weight", f"{ours}.weight"), (f"{original}.bias", f"{ours}.bias")]


def _layer_pairs(index: int) -> Pairs:
    """One encoder layer. Layer 0 creates the relative-position table before its projections; layers 1.. are
    handed layer 0's table after construction, so their copy comes after grep_linear."""
    original, ours = f"encoder.layers.{index}.", f"encoder.layers.{index}."
    table = [(f"{original}self_attn.relative_attention_bias.weight", RELATIVE_TABLE)]
    projections = [
        pair
        for name in ("k", "v", "q", "out")
        for pair in _weight_and_bias(f"{original}self_attn.{name}_proj", f"{ours}attention.{name}_proj")
    ]
    return [
        (f"{original}self_attn.grep_a", f"{ours}attention.gate_scale"),
        *(table if index == 0 else []),
        *projections,
        *_weight_and_bias(f"{original}self_attn.grep_linear", f"{ours}attention.gate_proj"),
        *(table if index > 0 else []),
        *_weight_and_bias(f"{original}self_attn_layer_norm", f"{ours}attention_layer_norm"),
        *_weight_and_bias(f"{original}fc1", f"{ours}feed_forward.fc1"),
        *_weight_and_bias(f"{original}fc2", f"{ours}feed_forward.fc2"),
        *_weight_and_bias(f"{original}final_layer_norm", f"{ours}final_layer_norm"),
    ]


def _encoder_pairs(config: BeatsConfig, weight_norm: tuple[str, str]) -> Pairs:
    """The unilm BEATs module (no predictor), keys as BEATs.state_dict() names them."""
    magnitude, direction = weight_norm
    return [
        *_weight_and_bias("post_extract_proj", "patch_embedding.projection"),
        *_weight_and_bias("patch_embedding", "patch_embedding.conv"),
        ("encoder.pos_conv.0.bias", f"{POSITIONAL_CONV}bias"),
        (f"encoder.pos_conv.0.{magnitude}", f"{POSITIONAL_CONV}parametrizations.weight.original0"),
        (f"encoder.pos_conv.0.{direction}", f"{POSITIONAL_CONV}parametrizations.weight.original1"),
        *[pair for index in range(config.num_hidden_layers) for pair in _layer_pairs(index)],
        *_weight_and_bias("encoder.layer_norm", "encoder.layer_norm"),
        *_weight_and_bias("layer_norm", "patch_embedding.layer_norm"),
    ]


def _prefixed(pairs: Pairs, original_prefix: str, our_prefix: str) -> Pairs:
    return [(original_prefix + original, our_prefix + ours) for original, ours in pairs]


def _tokenizer_pairs() -> Pairs:
    """Tokenizers registers `quantize` before `quantize_layer`. `quantize.embedding.initted` is 1.0 once the
    codebook is initialised (the original's k-means init sets it); the conversion checks that and drops it."""
    return [
        ("quantize.cluster_size", "quantizer.usage_count"),
        ("quantize.embedding.weight", "quantizer.codebook"),
        ("quantize.embedding.cluster_size", "quantizer.ema_cluster_size"),
        ("quantize.embedding.embed_avg", "quantizer.ema_embed_sum"),
        ("quantize.embedding.initted", torch.ones(1)),
        *_weight_and_bias("quantize_layer.0", "quantizer_projection.0"),
        *_weight_and_bias("quantize_layer.2", "quantizer_projection.2"),
    ]


def _state_dict(model: torch.nn.Module, pairs: Pairs) -> OrderedDict[str, torch.Tensor]:
    """The original state dict: each original key with our tensor (or a constant the conversion drops).

    Pairs whose tensor our model lacks are optional modules it does not have (e.g. no patch-embedding bias);
    a tensor of ours that no pair names would be lost, so that is an error.
    """
    if not model.config.conv_pos_weight_norm:
        raise ValueError("the positional convolution's weight norm was folded; the original g and v cannot be "
                         "recovered from the folded weight")
    state = model.state_dict()
    written = OrderedDict(
        (original, ours if isinstance(ours, torch.Tensor) else state[ours])
        for original, ours in pairs
        if isinstance(ours, torch.Tensor) or ours in state
    )
    unused = set(state) - {ours for _, ours in pairs if isinstance(ours, str)}
    if unused:
        raise ValueError(f"no original key for {sorted(unused)[:10]}")
    return written


# ---------------------------------------------------------------------------------------------------------------
# Writers and readers


def original_cfg(config: BeatsConfig, kind: str) -> dict[str, object]:
    """The inverse of conversion.beats.config_from_original: the cfg dict the original saves, in its order."""
    values = {original: getattr(config, ours) for original, ours in ORIGINAL_FIELD_NAMES.items()
              if hasattr(config, ours)}
    fields = [field for field in RELEASED_CFG if not (kind == "tokenizer" and field == NOT_IN_TOKENIZER_CFG)]
    if kind == "finetuned":  # the model class stands for finetuned_model, the label count for predictor_class
        values.update(finetuned_model=True, predictor_class=config.num_labels)
        fields += list(FINETUNED_CFG)
    if kind == "tokenizer":
        fields += list(TOKENIZER_CFG)
    return {field: values[field] for field in fields}


KINDS = {BeatsModel: "pretrained", BeatsForAudioClassification: "finetuned", BeatsTokenizerModel: "tokenizer"}


def _head_pairs(kind: str) -> Pairs:
    if kind == "finetuned":
        return _weight_and_bias("predictor", "classifier")
    return _tokenizer_pairs() if kind == "tokenizer" else []


def write_beats(model: BeatsModel | BeatsForAudioClassification | BeatsTokenizerModel) -> dict:
    """What microsoft/unilm's files hold: {'cfg', 'model'} plus 'label_dict' (index -> MID) for fine-tuned ones."""
    kind = KINDS[type(model)]
    encoder = _prefixed(_encoder_pairs(model.config, UNILM_WEIGHT_NORM), "", "" if kind == "pretrained" else "beats.")
    checkpoint = {"cfg": original_cfg(model.config, kind), "model": _state_dict(model, encoder + _head_pairs(kind))}
    if kind == "finetuned" and model.config.label_mids is not None:
        checkpoint["label_dict"] = dict(enumerate(model.config.label_mids))
    return checkpoint


def write_sed(model: BeatsForAudioFrameClassification) -> OrderedDict[str, torch.Tensor]:
    """What PretrainedSED's BEATs_strong_1.pt holds: PredictionsWrapper.state_dict() before load_checkpoint's
    renaming (BEATs under 'model.model.', weight norm in torch's parametrization spelling), then the heads."""
    encoder = _prefixed(_encoder_pairs(model.config, SED_WEIGHT_NORM), "model.model.", "beats.")
    heads = [pair for head in ("strong_head", "weak_head") for pair in _weight_and_bias(head, f"sed_head.{head}")]
    return _state_dict(model, encoder + heads)


def write_sed_without_heads(model: BeatsForAudioFrameClassification) -> OrderedDict[str, torch.Tensor]:
    """BEATs_weak.pt / BEATs_ssl.pt as far as can be told offline: the encoder of `write_sed`, no 447-class heads."""
    return OrderedDict((key, value) for key, value in write_sed(model).items() if key.startswith("model.model."))


def read_checkpoint(path: Path) -> object:
    """A file as the original loaders read it (both hold only tensors and plain values: weights_only suffices)."""
    return torch.load(path, map_location="cpu", weights_only=True)


PARITY_LAYOUTS: dict[str, tuple[Callable[[torch.nn.Module], object], Callable[[Path], object]]] = {
    "beats_tiny_ssl": (write_beats, read_checkpoint),
    "beats_tiny_finetuned": (write_beats, read_checkpoint),
    "beats_tokenizer_tiny": (write_beats, read_checkpoint),
    "sed_beats_tiny": (write_sed, read_checkpoint),
}


# ---------------------------------------------------------------------------------------------------------------
# Released architectures


def _build(model_class: type[torch.nn.Module], config: BeatsConfig, seed: int) -> torch.nn.Module:
    return perturb_(model_class(config), seed)


def build_pretrained() -> BeatsModel:
    return _build(BeatsModel, BeatsConfig(**_our_fields(RELEASED_CFG)), seed=1)


def build_finetuned() -> BeatsForAudioClassification:
    config = BeatsConfig(
        **_our_fields({**RELEASED_CFG, **FINETUNED_CFG}),
        num_labels=AUDIOSET_CLASSES,
        label_mids=_audioset_mids(),
        problem_type="multi_label_classification",
    )
    return _build(BeatsForAudioClassification, config, seed=2)


def build_tokenizer() -> BeatsTokenizerModel:
    cfg = {name: value for name, value in RELEASED_CFG.items() if name != NOT_IN_TOKENIZER_CFG}
    return _build(BeatsTokenizerModel, BeatsTokenizerConfig(**_our_fields({**cfg, **TOKENIZER_CFG})), seed=3)


def build_sed_strong() -> BeatsForAudioFrameClassification:
    # the SED files hold no cfg: only the encoder's sizes (those of the released BEATs) and the heads matter
    config = BeatsConfig(**_our_fields(RELEASED_CFG), sed_head=dict(SED_HEAD), num_labels=AUDIOSET_STRONG_CLASSES)
    return _build(BeatsForAudioFrameClassification, config, seed=4)


ENCODER_EXPECT = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                  "patch_embed_dim": 512, "patch_size": 16}

RELEASES: list[Release] = [
    # covers beats-iter1, beats-iter2, beats-iter3, beats-iter3-plus-as20k, beats-iter3-plus-as2m (one cfg)
    Release("beats-iter3-plus-as2m", "beats", "BEATs_iter3_plus_AS2M.pt", build_pretrained, write_beats,
            expect={**ENCODER_EXPECT, "layer_wise_gradient_decay_ratio": 0.6}),
    # covers beats-iter{1,2,3}-finetuned-as2m-cpt{1,2} and beats-iter3-plus-{as20k,as2m}-finetuned-as2m-cpt{1,2}
    Release("beats-iter3-plus-as2m-finetuned-as2m-cpt1", "beats", "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt1.pt",
            build_finetuned, write_beats,
            expect={**ENCODER_EXPECT, "num_labels": AUDIOSET_CLASSES, "label_mids": _audioset_mids()}),
    # covers beats-tokenizer-iter2, beats-tokenizer-iter3, beats-tokenizer-iter3-plus-{as20k,as2m}
    Release("beats-tokenizer-iter3", "beats", "Tokenizer_iter3.pt", build_tokenizer, write_beats,
            expect={**ENCODER_EXPECT, "codebook_size": 1024, "codebook_dim": 256}),
    # covers pretrainedsed-beats-sed-strong
    Release("pretrainedsed-beats-sed-strong", "pretrained_sed", "BEATs_strong_1.pt", build_sed_strong, write_sed,
            convert_args=("--model_name", "BEATs"),
            expect={**ENCODER_EXPECT, "num_labels": AUDIOSET_STRONG_CLASSES}),
    # covers pretrainedsed-beats-sed-weak and -ssl (unilm's iter3+ AS2M fine-tuned and iter3 encoders, repackaged):
    # the same encoder keys and, as far as can be told offline (research/pretrained_sed_b.md), no 447-class heads;
    # the conversion initialises fresh heads (as the original loader does), so the encoder outputs are compared
    Release("pretrainedsed-beats-sed-weak", "pretrained_sed", "BEATs_weak.pt", build_sed_strong,
            write_sed_without_heads, convert_args=("--model_name", "BEATs"),
            expect={**ENCODER_EXPECT, "num_labels": AUDIOSET_STRONG_CLASSES}, output=encoder_output),
]
