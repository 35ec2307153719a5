"""`audiozoo pretrain beats`: BEATs' masked patch prediction (Chen et al., "BEATs: Audio Pre-Training with Acoustic
Tokenizers", ICML 2023), one accelerate loop; its tokenizer is trained by `pretrain_beats_tokenizer`.

The iterations: random-projection tokenizer -> `pretrain beats` (BEATs iter1) -> `pretrain beats_tokenizer` with
that model as teacher (Tokenizer iter2) -> `pretrain beats --tokenizer` it (BEATs iter2) -> ...

Masked patch prediction (`run_pretrain_beats`), one step:
1. B clips -> filterbanks [B, T, 128]; the frozen tokenizer gives every 16 x 16 patch a codebook id [B, P];
2. per clip, `mask_ratio` (75 %) of the P patches are drawn uniformly at random, the same count in every clip;
3. the student `BeatsModel` encodes only the kept patches (MAE-style: masked patches are removed from the
   encoder input, not replaced);
4. the label predictor gets the encoded kept patches at their places and zero vectors at the masked places
   (not a learned mask token; an assumption, see below), runs `predictor_layers` BEATs Transformer layers over
   the whole sequence and a linear classifier over the codebook; loss = cross-entropy on the masked patches.
The student encoder is what gets saved (AutoModel loads it); the predictor lives in the checkpoints only.

The paper gives the scheme above (75 % masking, masked patches dropped from the encoder, label prediction with
cross-entropy on masked patches; iteration 1 = random projection). The training code was never released, and the
paper text could not be checked here, so every detail below is an assumption of this module (those it shares
with tokenizer training, on initialisation, optimisation and data, are listed in `common_beats`):
- masking: uniform random patches (no blocks), kept count round(P * (1 - mask_ratio)), one mask per clip;
- kept patches keep their geometry: the convolutional positional embedding runs over the full-length sequence
  with the masked patches set to zero and the relative position bias uses the ORIGINAL patch indices, so the
  encoded kept patches equal a full-length pass in which the masked patches are padding (and the student never
  sees a masked patch), at the cost of the Transformer layers on the kept patches only;
- label predictor: `predictor_layers` (default 3, ESPnet's choice) BEATs layers of the encoder's width and
  settings (post-LN deep norm, convolutional positions, gated relative bias; no layerdrop, no gradient decay),
  zero vectors at the masked places (no learned mask token), then Linear(width, codebook_size);
  loss averaged over the masked patches, optional label smoothing (default 0);
- iteration-1 tokenizer: `tokenizers_beats.RandomProjectionTokenizer` (raw flattened patch of the normalised
  filterbank, Gaussian projection to `codebook_dim` 256 and 1024 Gaussian codes, both l2-normalised, seeded);
- the student's layer-wise gradient decay (config, 0.6) and layerdrop (config, 0.05) apply as in the original
  encoder code; a new encoder and the predictor layers get the original's deep-norm initialisation.

Multi-process: layerdrop needs DDP's `find_unused_parameters=True` (see `common_beats`); the frozen tokenizer is
never wrapped or sharded.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate.utils import set_seed
from torch import nn
from transformers import AutoFeatureExtractor

from ..models.beats import BeatsConfig, BeatsFeatureExtractor, BeatsModel
from ..models.beats.modeling_beats import BeatsRelativePositionBias
from . import common_beats, loop
from .common import PretrainResult, TrainingState, compute_features, load_config
from .options import PretrainBeatsArgs, options_from, summary_line
from .options import add_pretrain_beats_arguments as add_arguments
from .tokenizers_beats import (
    RANDOM_TOKENIZER_FILE,
    FrozenTokenizer,
    load_frozen_tokenizer,
)

# --------------------------------------------------------------------------------------------------------------
# arguments and results


@dataclass
class PretrainBeatsResult(PretrainResult):
    """Output folder, per-step losses, wall time, optimiser steps."""


# --------------------------------------------------------------------------------------------------------------
# masking


def kept_patch_count(num_patches: int, mask_ratio: float) -> int:
    """Patches every clip keeps: round(P * (1 - mask_ratio)); at least one kept and one masked."""
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
    kept = round(num_patches * (1.0 - mask_ratio))
    if not 1 <= kept < num_patches:
        raise ValueError(f"mask_ratio {mask_ratio} on {num_patches} patches keeps {kept}: need 1 .. {num_patches - 1}")
    return kept


def random_patch_split(batch: int, num_patches: int, mask_ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep_index [B, K], mask_index [B, P - K]), both ascending: uniform random patches per clip, drawn on the CPU
    from torch's global generator (accelerate checkpoints it, so a resumed run draws what the first would have)."""
    kept = kept_patch_count(num_patches, mask_ratio)
    order = torch.rand(batch, num_patches).argsort(dim=1)
    return order[:, :kept].sort(dim=1).values, order[:, kept:].sort(dim=1).values


def gather_patches(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[B, P, C] tokens at [B, K] indices -> [B, K, C]."""
    return tokens.gather(1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def place_patches(tokens: torch.Tensor, index: torch.Tensor, num_patches: int) -> torch.Tensor:
    """[B, K, C] tokens -> [B, P, C] with the tokens at `index` and zeros elsewhere."""
    batch, _, channels = tokens.shape
    full = tokens.new_zeros(batch, num_patches, channels)
    return full.scatter(1, index.unsqueeze(-1).expand(-1, -1, channels), tokens)


# --------------------------------------------------------------------------------------------------------------
# the BEATs encoder on the kept patches only


class GradientScale(torch.autograd.Function):
    """Identity forward, gradient times `scale` backward: BEATs' layer-wise gradient decay."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def relative_position_bias_at(module: BeatsRelativePositionBias, positions: torch.Tensor) -> torch.Tensor:
    """[B, H, K, K] bucketed bias between patches at original indices `positions` [B, K] (key - query offsets)."""
    relative = positions[:, None, :] - positions[:, :, None]
    return module.relative_attention_bias(module.bucket(relative)).permute(0, 3, 1, 2)


def encode_kept_patches(encoder: BeatsModel, input_values: torch.Tensor, keep_index: torch.Tensor) -> torch.Tensor:
    """[B, K, C] encoder outputs of the kept patches only; the layers see K tokens, not P.

    Follows `BeatsEncoder.forward` step by step, but the positional convolution runs on the full sequence with
    the other patches zeroed and the relative bias uses the original indices: the result equals the full encoder
    with the other patches as padding (`valid_mask`), so nothing of a dropped patch reaches the kept ones.
    """
    config, stack = encoder.config, encoder.encoder
    tokens = encoder.patch_embedding(input_values)
    visible = place_patches(gather_patches(tokens, keep_index), keep_index, tokens.shape[1])
    hidden = gather_patches(visible + stack.pos_conv_embed(visible), keep_index)
    if not config.layer_norm_first:
        hidden = stack.layer_norm(hidden)
    hidden = stack.dropout(hidden)
    bias = None
    if stack.relative_position_bias is not None:
        bias = relative_position_bias_at(stack.relative_position_bias, keep_index)
    decay = config.layer_wise_gradient_decay_ratio
    for layer in stack.layers:
        if decay != 1.0 and torch.is_grad_enabled():
            hidden = GradientScale.apply(hidden, decay)
        if stack.training and config.layerdrop > 0 and torch.rand(()) < config.layerdrop:
            continue
        hidden, _ = layer(hidden, None, bias)
    if config.layer_norm_first:
        hidden = stack.layer_norm(hidden)
    return hidden


# --------------------------------------------------------------------------------------------------------------
# masked patch prediction: student encoder + label predictor


class BeatsLabelPredictor(nn.Module):
    """Encoded kept patches at their places, zeros at the masked ones -> BEATs layers -> codebook logits."""

    def __init__(self, encoder: BeatsModel, codebook_size: int, num_layers: int = 3):
        super().__init__()
        self.encoder = common_beats.new_helper_stack(encoder.config, num_layers, encoder._init_weights)
        self.classifier = nn.Linear(encoder.config.hidden_size, codebook_size)
        encoder._init_weights(self.classifier)

    def forward(self, encoded: torch.Tensor, keep_index: torch.Tensor, mask_index: torch.Tensor) -> torch.Tensor:
        """[B, K, C] encoded kept patches -> [B, M, codebook_size] logits of the masked patches."""
        num_patches = keep_index.shape[1] + mask_index.shape[1]
        hidden, _, _ = self.encoder(place_patches(encoded, keep_index, num_patches))
        return self.classifier(gather_patches(hidden, mask_index))


class BeatsPretrainingModel(nn.Module):
    """The trained side of masked patch prediction: the student `BeatsModel` and the label predictor."""

    def __init__(self, encoder: BeatsModel, codebook_size: int, predictor_layers: int = 3):
        super().__init__()
        self.encoder = encoder
        self.predictor = BeatsLabelPredictor(encoder, codebook_size, predictor_layers)

    def forward(self, input_values: torch.Tensor, keep_index: torch.Tensor, mask_index: torch.Tensor) -> torch.Tensor:
        """`input_values` [B, T, mel]; indices [B, K] / [B, M] of the kept / masked patches -> [B, M, V] logits."""
        encoded = encode_kept_patches(self.encoder, input_values, keep_index)
        return self.predictor(encoded, keep_index, mask_index)


def masked_prediction_loss(logits: torch.Tensor, labels: torch.Tensor, mask_index: torch.Tensor,
                           label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy, accuracy) over the masked patches; `labels` [B, P] codebook ids of all patches."""
    targets = labels.gather(1, mask_index).reshape(-1)
    flat = logits.float().reshape(-1, logits.shape[-1])
    loss = F.cross_entropy(flat, targets, label_smoothing=label_smoothing)
    accuracy = (flat.argmax(dim=-1) == targets).float().mean()
    return loss, accuracy


# --------------------------------------------------------------------------------------------------------------
# building the student and its labeller


def build_student(args: PretrainBeatsArgs) -> tuple[BeatsModel, BeatsFeatureExtractor]:
    """The student encoder and its front end: from a BEATs folder, or new from a config.json (deep-norm init)."""
    common_beats.check_source(args.config, args.model, "encoder")
    if not (args.config or args.model):
        raise ValueError("give config (a config.json for a new encoder) or model (a BEATs folder)")
    if args.model:
        encoder = BeatsModel.from_pretrained(args.model, dtype=torch.float32)
        return encoder, AutoFeatureExtractor.from_pretrained(args.model)
    config = load_config(args.config)
    if type(config) is not BeatsConfig:
        raise ValueError(f"{args.config}: BEATs pre-training needs model_type {BeatsConfig.model_type}, got "
                         f"{config.model_type}")
    encoder = BeatsModel(config)
    if config.deep_norm:
        common_beats.deep_norm_init_(encoder.encoder.layers)
    return encoder, BeatsFeatureExtractor(sampling_rate=config.sampling_rate, num_mel_bins=config.num_mel_bins)


def build_patch_tokenizer(args: PretrainBeatsArgs, config: BeatsConfig) -> FrozenTokenizer:
    """The frozen labeller of the student's patches (see `tokenizers_beats.load_frozen_tokenizer`)."""
    seed = args.seed if args.tokenizer_seed is None else args.tokenizer_seed
    tokenizer = load_frozen_tokenizer(args.tokenizer, config.patch_size, args.codebook_size, args.codebook_dim, seed)
    if tokenizer.patch_size != config.patch_size:
        raise ValueError(f"the tokenizer's patches are {tokenizer.patch_size} wide, the student's {config.patch_size}")
    if not tokenizer.is_random_projection and tokenizer.module.config.num_mel_bins != config.num_mel_bins:
        raise ValueError("the tokenizer and the student must read the same filterbank (num_mel_bins differ)")
    return tokenizer


# --------------------------------------------------------------------------------------------------------------
# the loop


def run_pretrain_beats(args: PretrainBeatsArgs) -> PretrainBeatsResult:
    """Pre-train (or continue pre-training) a BEATs encoder by masked patch prediction; saved to `output_dir`."""
    started = time.perf_counter()
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # 1. student, tokenizer and data, checked before anything runs
    encoder, feature_extractor = build_student(args)
    num_patches = common_beats.check_run(args, encoder.config, feature_extractor)
    kept_patch_count(num_patches, args.mask_ratio)  # raises if the ratio leaves no kept or no masked patch
    tokenizer = build_patch_tokenizer(args, encoder.config)
    loader = common_beats.clip_loader(args, args.data, feature_extractor.sampling_rate)

    # 2. the trained side (student + predictor), optimiser and schedule
    model = BeatsPretrainingModel(encoder, tokenizer.codebook_size, args.predictor_layers)
    optimizer, scheduler, total_steps = common_beats.build_optimiser(model, args, len(loader))

    # 3. accelerator; the frozen tokenizer stays out of prepare, a random one is checkpointed
    accelerator = common_beats.beats_accelerator(args, output_dir, encoder.config.layerdrop)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    tokenizer.to(accelerator.device)
    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    if tokenizer.is_random_projection:
        accelerator.register_for_checkpointing(tokenizer.module)
    loop.init_trackers(accelerator, "audiozoo-pretrain-beats", args)
    loop.resume(accelerator, args, output_dir, state)

    # 4. training
    def batch_loss(batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = compute_features(feature_extractor, batch["waveform"], accelerator.device)
        labels = tokenizer(features, accelerator.autocast)
        keep_index, mask_index = random_patch_split(features.shape[0], labels.shape[1], args.mask_ratio)
        keep_index, mask_index = keep_index.to(accelerator.device), mask_index.to(accelerator.device)
        with accelerator.autocast():
            logits = model(features, keep_index, mask_index)
        loss, accuracy = masked_prediction_loss(logits, labels, mask_index, args.label_smoothing)
        return loss, {"masked_accuracy": accuracy}

    stopped = loop.train_steps(accelerator, model, optimizer, scheduler, loader, state, args, total_steps,
                               "pretrain beats", batch_loss)
    result = PretrainBeatsResult(str(output_dir), state.losses, time.perf_counter() - started, state.step)
    if stopped:
        accelerator.end_training()
        return result

    # 5. the student encoder + front end (AutoModel / AutoFeatureExtractor), and the random tokenizer's tensors
    loop.save_model_folder(accelerator, accelerator.unwrap_model(model).encoder, feature_extractor, output_dir)
    loop.write_results(accelerator, output_dir, result)
    if tokenizer.is_random_projection and accelerator.is_main_process:
        tokenizer.module.save(output_dir / RANDOM_TOKENIZER_FILE)
    accelerator.end_training()
    return result


# --------------------------------------------------------------------------------------------------------------
# command line


def main(args: argparse.Namespace) -> int:
    """`audiozoo pretrain beats`."""
    result = run_pretrain_beats(options_from(args, PretrainBeatsArgs))
    print(summary_line(result, f"{result.steps} steps", "encoder"))
    return 0


__all__ = [
    "BeatsLabelPredictor",
    "BeatsPretrainingModel",
    "PretrainBeatsArgs",
    "PretrainBeatsResult",
    "add_arguments",
    "encode_kept_patches",
    "kept_patch_count",
    "main",
    "masked_prediction_loss",
    "random_patch_split",
    "run_pretrain_beats",
]
