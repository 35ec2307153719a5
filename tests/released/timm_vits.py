"""AST and the PretrainedSED ViT students (ATST-F, fPaSST, ASiT, M2D): the original containers, at released sizes.

All five keep their transformer as timm ViT blocks (`blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
mlp.fc2}`, q/k/v fused), so one inverse of the conversion's timm renaming and q/k/v split (`OriginalLayout.
timm_blocks`) serves them all; each family only adds its embeddings, final norm and heads, in the order the original
modules register them (parameters of a module first, then its sub-modules), which is the order of the saved keys.

Two families' files hold tensors the conversion drops and a converted model cannot give back: AST's unused DeiT
ImageNet heads and M2D's unused norm_stats and nnAudio buffers; their `read_original` leaves exactly those out.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import nn

from audiozoo import (
    AsitConfig,
    AsitForAudioFrameClassification,
    AstConfig,
    AstForAudioClassification,
    AtstFrameConfig,
    AtstFrameForAudioFrameClassification,
    FpasstConfig,
    FpasstForAudioFrameClassification,
    M2dConfig,
    M2dForAudioFrameClassification,
)
from audiozoo.conversion.ast import UNUSED as AST_UNUSED_KEYS

from .common import Release, encoder_output, perturb_

Tensors = dict[str, torch.Tensor]


class OriginalLayout:
    """Collects a converted model's tensors under their original names, in the order they are added.

    `result()` refuses to finish while a tensor of the model is left unplaced, so a writer cannot silently drop
    weights the conversion read (what the original file lacks must then be missing from the model too).
    """

    def __init__(self, model: nn.Module):
        self.state = model.state_dict()
        self.layout: Tensors = {}
        self.placed: set[str] = set()

    def take(self, original: str, package: str) -> None:
        """Put the tensor `package` under `original`, or, when `package` names a module (LayerNorm, Linear, Conv),
        its weight and bias under `original.weight` / `original.bias` (torch's order)."""
        if package in self.state:
            pairs = [(original, package)]
        else:
            parts = [part for part in ("weight", "bias") if f"{package}.{part}" in self.state]
            pairs = [(f"{original}.{part}", f"{package}.{part}") for part in parts]
        if not pairs:
            raise KeyError(f"the converted model has no tensor or module {package!r} (for original {original!r})")
        for original_key, package_key in pairs:
            self._put(original_key, self.state[package_key], package_key)

    def take_all(self, pairs: list[tuple[str, str]]) -> None:
        for original, package in pairs:
            self.take(original, package)

    def timm_blocks(self, original: str, package: str, layers: int) -> None:
        """`{package}.layers.N` (`vit.PreNormBlock` with separate q/k/v) -> timm's `{original}blocks.N`: the inverse
        of `conversion.common.timm_block_rules` + `split_timm_qkv`, q/k/v rows concatenated back into `attn.qkv`."""
        for index in range(layers):
            block, layer = f"{original}blocks.{index}.", f"{package}.layers.{index}."
            self.take(f"{block}norm1", f"{layer}attention_norm")
            for part in ("weight", "bias"):  # ATST-F's qkv has no bias
                projections = [f"{layer}attention.{name}_proj.{part}" for name in ("q", "k", "v")]
                if projections[0] in self.state:
                    fused = torch.cat([self.state[key] for key in projections])
                    self._put(f"{block}attn.qkv.{part}", fused, *projections)
            self.take(f"{block}attn.proj", f"{layer}attention.out_proj")
            self.take(f"{block}norm2", f"{layer}mlp_norm")
            self.take(f"{block}mlp.fc1", f"{layer}mlp.fc1")
            self.take(f"{block}mlp.fc2", f"{layer}mlp.fc2")

    def take_prefix(self, original: str, package: str) -> None:
        """Every tensor under `package` moved to `original` with the rest of its name kept, in the model's order."""
        for key in [key for key in self.state if key.startswith(package)]:
            self._put(original + key.removeprefix(package), self.state[key], key)

    def result(self) -> Tensors:
        unplaced = [key for key in self.state if key not in self.placed]
        if unplaced:
            raise AssertionError(f"the original layout leaves converted tensors out: {unplaced[:10]}")
        return self.layout

    def _put(self, original: str, tensor: torch.Tensor, *package_keys: str) -> None:
        if original in self.layout:
            raise AssertionError(f"{original!r} written twice")
        self.layout[original] = tensor
        self.placed.update(package_keys)


def read_weights(path: str | Path) -> dict:
    """A parity case's file as the original code reads it (plain tensors only, so weights_only holds)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def without(patterns: list[str], checkpoint: dict) -> dict:
    """`checkpoint` minus the keys matching one of the regular expressions `patterns` (order kept)."""
    compiled = [re.compile(pattern) for pattern in patterns]
    return {key: value for key, value in checkpoint.items() if not any(p.fullmatch(key) for p in compiled)}


# --- AST (YuanGongND/ast: torch.save(DataParallel(ASTModel).state_dict())) ---------------------------------------


def ast_to_original(model: AstForAudioClassification) -> OrderedDict:
    """The DataParallel state dict of ASTModel: `module.v.*` (timm DistilledVisionTransformer: cls_token,
    pos_embed, dist_token, patch_embed, blocks, norm) then `module.mlp_head.{0,1}` (LayerNorm, Linear)."""
    layout = OriginalLayout(model)
    layout.take_all([
        ("v.cls_token", "ast.embeddings.cls_token"),
        ("v.pos_embed", "ast.embeddings.position_embeddings"),
        ("v.dist_token", "ast.embeddings.distillation_token"),
        ("v.patch_embed.proj", "ast.embeddings.patch_embedding.conv"),
    ])
    layout.timm_blocks("v.", "ast", model.config.num_hidden_layers)
    layout.take("v.norm", "ast.layer_norm")
    # v.head, v.head_dist (DeiT's ImageNet heads) would come here: see read_ast_original
    layout.take_all([("mlp_head.0", "classifier.layer_norm"), ("mlp_head.1", "classifier.dense")])
    return OrderedDict((f"module.{key}", value) for key, value in layout.result().items())


def read_ast_original(path: str | Path) -> dict:
    """The AST file without `module.v.head.*` / `module.v.head_dist.*`: DeiT's ImageNet classifier heads, stored
    in every release but never used by AST, so the conversion drops them (conversion.ast.UNUSED) and a converted
    model cannot give them back."""
    return without([rf"module\.{pattern}" for pattern in AST_UNUSED_KEYS], read_weights(path))


# --- PretrainedSED (fschmid56/PretrainedSED: PredictionsWrapper.state_dict(), released key layout) ---------------


def sed_heads(layout: OriginalLayout) -> None:
    """PredictionsWrapper's `seq_model.*` (teachers only), `strong_head.*`, `weak_head.*`, registered in that order
    after the base model; the package's `sed_head.*` keeps the same modules in the same order."""
    layout.take_prefix("", "sed_head.")


def atst_frame_to_original(model: AtstFrameForAudioFrameClassification) -> Tensors:
    """`model.atst.*` (FrameAST: mask_embed, pos_embed, patch_embed.patch_embed, blocks, norm_frame) + heads."""
    layout = OriginalLayout(model)
    layout.take_all([
        ("model.atst.mask_embed", "atst.mask_embedding"),
        ("model.atst.pos_embed", "atst.position_embeddings"),
        ("model.atst.patch_embed.patch_embed", "atst.patch_embedding"),
    ])
    layout.timm_blocks("model.atst.", "atst", model.config.num_hidden_layers)
    layout.take("model.atst.norm_frame", "atst.layer_norm")
    sed_heads(layout)
    return layout.result()


def fpasst_to_original(model: FpasstForAudioFrameClassification) -> Tensors:
    """`model.*` (PaSST: tokens and position tables, conv stem, patch_embed.proj, blocks, norm) + heads."""
    layout = OriginalLayout(model)
    layout.take_all([
        ("model.cls_token", "fpasst.cls_token"),
        ("model.dist_token", "fpasst.distillation_token"),
        ("model.new_pos_embed", "fpasst.token_position_embeddings"),
        ("model.freq_new_pos_embed", "fpasst.frequency_position_embeddings"),
        ("model.time_new_pos_embed", "fpasst.time_position_embeddings"),
        *[(f"model.conv_in_{index}", f"fpasst.conv_in_{index}") for index in (1, 2, 3)],
        ("model.patch_embed.proj", "fpasst.patch_embedding"),
    ])
    layout.timm_blocks("model.", "fpasst", model.config.num_hidden_layers)
    layout.take("model.norm", "fpasst.layer_norm")
    sed_heads(layout)
    return layout.result()


def cls_vit_to_original(prefix: str, package: str, model: nn.Module) -> Tensors:
    """A timm ViT with a CLS token under `prefix` (ASiT: `model.`, M2D: `model.backbone.`) + heads."""
    layout = OriginalLayout(model)
    layout.take_all([
        (f"{prefix}cls_token", f"{package}.cls_token"),
        (f"{prefix}pos_embed", f"{package}.position_embeddings"),
        # M2D's backbone.norm_stats would come here: see read_m2d_original
        (f"{prefix}patch_embed.proj", f"{package}.patch_embedding.conv"),
    ])
    layout.timm_blocks(prefix, package, model.config.num_hidden_layers)
    layout.take(f"{prefix}norm", f"{package}.layer_norm")
    # M2D's model.to_spec.* would come here: see read_m2d_original
    sed_heads(layout)
    return layout.result()


asit_to_original: Callable[[nn.Module], Tensors] = partial(cls_vit_to_original, "model.", "asit")
m2d_to_original: Callable[[nn.Module], Tensors] = partial(cls_vit_to_original, "model.backbone.", "m2d")

# What the M2D conversion drops and a converted model therefore cannot give back: `backbone.norm_stats` (M2D's own
# statistics, unused by the SED path, whose feature extractor holds the wrapper's constants -7.1 / 4.2) and
# `to_spec.*` (nnAudio's STFT kernels and mel basis, buffers the feature extractor recomputes).
M2D_UNUSED_KEYS = [r"model\.backbone\.norm_stats", r"model\.to_spec\..*"]


def read_m2d_original(path: str | Path) -> dict:
    """The M2D file without the keys the conversion drops (M2D_UNUSED_KEYS)."""
    return without(M2D_UNUSED_KEYS, read_weights(path))


def without_heads(write: Callable[[nn.Module], Tensors], model: nn.Module) -> Tensors:
    """A weak / SSL file as the conversion expects it (its docstring: heads absent, as in SSL files): the encoder
    keys of `write` with neither heads nor sequence model."""
    return {key: value for key, value in write(model).items()
            if not key.startswith(("strong_head.", "weak_head.", "seq_model."))}


PARITY_LAYOUTS: dict[str, tuple[Callable[[nn.Module], object], Callable[[str | Path], object]]] = {
    "ast_tiny_f10": (ast_to_original, read_ast_original),
    "ast_tiny_f16": (ast_to_original, read_ast_original),
    "sed_atstf_tiny": (atst_frame_to_original, read_weights),
    "sed_wrapper_rnn_attention": (atst_frame_to_original, read_weights),
    "sed_fpasst_tiny": (fpasst_to_original, read_weights),
    "sed_asit_tiny": (asit_to_original, read_weights),
    "sed_m2d_tiny": (m2d_to_original, read_m2d_original),
}


# --- released sizes -----------------------------------------------------------------------------------------------

# ViT-B as every release here has it (AST: DeiT-base 384; ATST-F FrameAST, PaSST DeiT-B distilled, ASiT vit_base and
# M2D LocalViT: 768 wide, 12 blocks of 12 heads, MLP ratio 4)
VIT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
SED_CLASSES = 447  # AudioSet-strong training classes of every released student's strong and weak head


def build(config_class: type, model_class: type, fields: dict, seed: int) -> nn.Module:
    """The package's model at a released size, its weights seeded (perturb_) and in eval mode."""
    return perturb_(model_class(config_class(**VIT_BASE, **fields)), seed)


def ast_release(name: str, filename: str, stride: int, max_length: int, num_labels: int, seed: int,
                dataset: str) -> Release:
    """An AST release: DeiT-base 384, `stride` in frequency and time (read from `filename`), `max_length` frames."""
    fields = {"frequency_stride": stride, "time_stride": stride, "max_length": max_length, "num_labels": num_labels}
    return Release(
        name=name, script="ast", filename=filename,
        build=partial(build, AstConfig, AstForAudioClassification, fields, seed),
        write=ast_to_original, convert_args=("--dataset", dataset),
        expect={**VIT_BASE, **fields}, clip_seconds=min(2.0, (max_length - 28) / 100),  # 1 s for 128 frames
    )


def sed_release(name: str, filename: str, model_name: str, classes: tuple[type, type], write: Callable,
                fields: dict, seed: int, output: Callable | None = None) -> Release:
    """A PretrainedSED student: ViT-B encoder with linear 447-class strong and weak heads (which `write` keeps for
    the strong stage and drops for the weak / SSL stages)."""
    config_class, model_class = classes
    return Release(
        name=name, script="pretrained_sed", filename=filename,
        build=partial(build, config_class, model_class, {**fields, "num_labels": SED_CLASSES}, seed),
        write=write, convert_args=("--model_name", model_name),
        expect={**VIT_BASE, **fields, "num_labels": SED_CLASSES}, output=output,
    )


ATST_FRAME = (AtstFrameConfig, AtstFrameForAudioFrameClassification)
FPASST = (FpasstConfig, FpasstForAudioFrameClassification)
ASIT = (AsitConfig, AsitForAudioFrameClassification)
M2D = (M2dConfig, M2dForAudioFrameClassification)
# released patching: ATST-F tokens of 4 frames x 64 mel bins, 250 positions (10 s), no qkv bias; fPaSST conv stem
# 16/32/64 channels reshaped to 16 x 128 for a (128 x 2) patch conv, 250 time positions; ASiT 16 x 16 patches, its
# 297-row table read as an (8, 37) grid; M2D 16 x 16 patches over 80 mel bins x 1001 frames (5 x 62 grid)
ATST_FRAME_FIELDS = {"qkv_bias": False, "num_mel_bins": 64, "patch_frames": 4, "max_patches": 250}
FPASST_FIELDS = {"stem_channels": [16, 32, 64], "patch_channels": 16, "max_patches": 250}
ASIT_FIELDS = {"patch_size": 16, "position_grid": [8, 37]}
M2D_FIELDS = {"num_mel_bins": 80, "patch_size": 16, "unit_frames": 1001}

RELEASES: list[Release] = [
    # covers ast-audioset-10-10-{0.4593, 0.4495, 0.4483, 0.4475}: one architecture (10/10 strides, 12 x 101 patches)
    ast_release("ast-audioset-10-10-0.4593", "audioset_10_10_0.4593.pth", 10, 1024, 527, 101, "audioset"),
    # ast-audioset-12-12-0.4467 (10 x 85 patches)
    ast_release("ast-audioset-12-12-0.4467", "audioset_12_12_0.4467.pth", 12, 1024, 527, 102, "audioset"),
    # ast-audioset-14-14-0.4431 (9 x 73 patches)
    ast_release("ast-audioset-14-14-0.4431", "audioset_14_14_0.4431.pth", 14, 1024, 527, 103, "audioset"),
    # ast-audioset-16-16-0.4422 (8 x 64 patches)
    ast_release("ast-audioset-16-16-0.4422", "audioset_16_16_0.4422.pth", 16, 1024, 527, 104, "audioset"),
    # ast-speechcommands-10-10-0.9812 (128 frames, 12 x 12 patches, 35 classes)
    ast_release("ast-speechcommands-10-10-0.9812", "speechcommands_10_10_0.9812.pth", 10, 128, 35, 105,
                "speechcommands"),
    # pretrainedsed-atst-frame-strong
    sed_release("pretrainedsed-atst-frame-strong", "ATST-F_strong_1.pt", "ATST-F", ATST_FRAME,
                atst_frame_to_original, ATST_FRAME_FIELDS, 111),
    # pretrainedsed-fpasst-strong
    sed_release("pretrainedsed-fpasst-strong", "fpasst_strong_1.pt", "fpasst", FPASST, fpasst_to_original,
                FPASST_FIELDS, 112),
    # pretrainedsed-asit-strong
    sed_release("pretrainedsed-asit-strong", "ASIT_strong_1.pt", "ASIT", ASIT, asit_to_original, ASIT_FIELDS, 113),
    # pretrainedsed-m2d-strong
    sed_release("pretrainedsed-m2d-strong", "M2D_strong_1.pt", "M2D", M2D, m2d_to_original, M2D_FIELDS, 114),
]

# The weak and SSL stages: the same encoders without heads (the layout the conversion expects of them, which it
# completes with freshly initialised 447-class heads, as the original loader does): their encoder outputs are compared.
RELEASES += [
    # pretrainedsed-atst-frame-weak and pretrainedsed-atst-frame-ssl
    sed_release("pretrainedsed-atst-frame-weak", "ATST-F_weak.pt", "ATST-F", ATST_FRAME,
                partial(without_heads, atst_frame_to_original), ATST_FRAME_FIELDS, 121, encoder_output),
    # pretrainedsed-fpasst-weak and pretrainedsed-fpasst-ssl
    sed_release("pretrainedsed-fpasst-weak", "fpasst_weak.pt", "fpasst", FPASST,
                partial(without_heads, fpasst_to_original), FPASST_FIELDS, 122, encoder_output),
    # pretrainedsed-asit-weak and pretrainedsed-asit-ssl
    sed_release("pretrainedsed-asit-weak", "ASIT_weak.pt", "ASIT", ASIT, partial(without_heads, asit_to_original),
                ASIT_FIELDS, 123, encoder_output),
    # pretrainedsed-m2d-weak and pretrainedsed-m2d-ssl
    sed_release("pretrainedsed-m2d-weak", "M2D_weak.pt", "M2D", M2D, partial(without_heads, m2d_to_original),
                M2D_FIELDS, 124, encoder_output),
]
