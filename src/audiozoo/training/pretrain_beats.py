"""`audiozoo pretrain beats` and `audiozoo pretrain beats_tokenizer`: BEATs' iterative self-supervised training
(Chen et al., "BEATs: Audio Pre-Training with Acoustic Tokenizers", ICML 2023) as two accelerate loops.

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

Tokenizer training (`run_train_tokenizer`), one step:
1. the frozen teacher (a BEATs folder: an SSL model, or a fine-tuned one for "iter3+") encodes the clips; its
   last-layer outputs [B, P, C] are the targets;
2. the `BeatsTokenizerModel` encodes the same clips, projects every patch (Linear/Tanh/Linear) to
   `codebook_dim`, l2-normalises it and takes its nearest codebook entry (cosine);
3. straight-through estimation: the decoder input is z + sg(e - z), so gradients reach the encoder as if the
   quantiser were the identity; the decoder (a Linear to the width, `decoder_layers` BEATs layers, a Linear to
   the teacher's width) predicts the teacher outputs; loss = 1 - mean cosine similarity + `commitment_weight` *
   mean squared error(z, sg(e));
4. the codebook is not trained by gradients: after every forward, each used entry moves towards the
   l2-normalised mean of the vectors assigned to it, e <- normalise(decay * e + (1 - decay) * mean), unused entries
   stay (the released code's NormEMAVectorQuantizer); counts and sums are summed over processes.
The tokenizer (encoder + projection + codebook) is saved; the decoder lives in the checkpoints only.

The paper gives the scheme above (75 % masking, masked patches dropped from the encoder, label prediction with
cross-entropy on masked patches; tokenizer = encoder + quantizer with l2-normalised EMA codebook, straight-through
estimation, a small Transformer decoder, cosine similarity to the teacher's last layer; iteration 1 = random
projection). The training code was never released, and the paper text could not be checked here, so every
detail below is an assumption of this module (the quantizer details follow the released quantizer code):
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
  encoder code; a new encoder (and the predictor, tokenizer and decoder layers) get the original's deep-norm
  initialisation (xavier-normal q/k gain 1, v/out/fc1/fc2 gain (8L)^(-1/4));
- tokenizer: same architecture as the teacher unless a config is given, codebook 1024 x 256, decay 0.99,
  commitment weight 1 (the released quantizer's beta), spherical k-means initialisation (10 iterations) of a
  never-trained codebook on the first batch, as the released quantizer's `kmeans_init`; decoder of 3 layers;
  `usage_count` holds the EMA of the per-entry counts (the original's `quantize.cluster_size`);
- optimisation: AdamW betas (0.9, 0.98), weight decay 0.01 (not on biases / 1-D), cosine schedule after a
  linear warm-up, gradient clipping at norm `max_grad_norm`, lr 5e-4; the paper's step counts and batch sizes
  are the user's to set;
- data: fixed-length waveform windows (`ClipDataset`: random crop of longer clips, zeros after shorter ones,
  the zeros treated as audio as the original does without a padding mask).

Multi-process: with layerdrop > 0 some layers get no gradient in a step, so DDP is told to look for unused
parameters (`find_unused_parameters=True`). The teacher / tokenizer are never wrapped or sharded; the codebook EMA
runs on whole tensors (not on FSDP / ZeRO-3 shards).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate.utils import broadcast, set_seed
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoFeatureExtractor, AutoModel
from transformers.modeling_outputs import ModelOutput

from ..models.beats import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsModel,
    BeatsTokenizerConfig,
    BeatsTokenizerModel,
)
from ..models.beats.modeling_beats import (
    BeatsEncoder,
    BeatsRelativePositionBias,
    BeatsVectorQuantizer,
)
from .common import (
    PretrainResult,
    RunOptions,
    TrainingState,
    compute_features,
    latest_checkpoint,
    load_config,
    make_accelerator,
)
from .data import ClipDataset, check_examples
from .optim import build_scheduler, parameter_groups
from .pretrain_eat import pretraining_examples
from .tokenizers_beats import (
    RANDOM_TOKENIZER_FILE,
    FrozenTokenizer,
    autocast_off,
    load_frozen_tokenizer,
)

# --------------------------------------------------------------------------------------------------------------
# arguments and results


@dataclass
class PretrainBeatsArgs(RunOptions):
    """Everything a masked-patch-prediction run needs (per process: batch_size clips per micro-batch)."""

    data: str  # folder of audio files (any depth), CSV/TSV manifest (labels ignored) or datasets folder
    output_dir: str
    config: str | None = None  # config.json of a new encoder (model_type audiozoo-beats)
    model: str | None = None  # or a BEATs folder / Hub id to continue from
    tokenizer: str | None = None  # None: random projection (iteration 1); a tokenizer folder; a saved .safetensors
    codebook_size: int = 1024  # random projection only
    codebook_dim: int = 256  # random projection only
    tokenizer_seed: int | None = None  # random projection only (None: `seed`)
    mask_ratio: float = 0.75
    predictor_layers: int = 3
    label_smoothing: float = 0.0
    clip_seconds: float = 10.0
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    max_grad_norm: float = 1.0


@dataclass
class TrainTokenizerArgs(RunOptions):
    """Everything a tokenizer-distillation run needs (per process: batch_size clips per micro-batch)."""

    data: str  # as PretrainBeatsArgs.data
    output_dir: str
    teacher: str  # BEATs folder / Hub id (an SSL model or a fine-tuned one)
    config: str | None = None  # config.json of a new tokenizer (model_type audiozoo-beats-tokenizer)
    model: str | None = None  # or a tokenizer folder to continue from (neither: the teacher's architecture)
    codebook_size: int | None = None  # new tokenizer only (None: the config's, else 1024)
    codebook_dim: int | None = None  # new tokenizer only (None: the config's, else 256)
    decoder_layers: int = 3
    codebook_decay: float = 0.99
    commitment_weight: float = 1.0
    kmeans_iterations: int = 10
    clip_seconds: float = 10.0
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    max_grad_norm: float = 1.0


@dataclass
class PretrainBeatsResult(PretrainResult):
    """Output folder, per-step losses, wall time, optimiser steps."""


@dataclass
class TrainTokenizerResult(PretrainResult):
    """Output folder, per-step losses, wall time, optimiser steps, and the codebook entries in use."""

    codes_used: int = 0  # codebook entries ever used (non-zero usage average) at the end


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


@torch.no_grad()
def deep_norm_init_(layers: nn.ModuleList) -> None:
    """The original's deep-norm initialisation of new layers: xavier-normal q/k (gain 1), v/out/fc1/fc2 (gain
    (8 L) ** -0.25)."""
    gain = (8 * len(layers)) ** -0.25
    for layer in layers:
        attention, feed_forward = layer.attention, layer.feed_forward
        for linear in (attention.q_proj, attention.k_proj):
            nn.init.xavier_normal_(linear.weight, gain=1.0)
        for linear in (attention.v_proj, attention.out_proj, feed_forward.fc1, feed_forward.fc2):
            nn.init.xavier_normal_(linear.weight, gain=gain)


def sub_encoder_config(config: BeatsConfig, num_layers: int) -> BeatsConfig:
    """A copy of `config` for a small helper stack (predictor, decoder): `num_layers` layers, no layerdrop, no
    gradient decay."""
    if num_layers < 1:
        raise ValueError(f"the predictor / decoder needs at least one layer, got {num_layers}")
    copied = copy.deepcopy(config)
    copied.num_hidden_layers = num_layers
    copied.layerdrop = 0.0
    copied.layer_wise_gradient_decay_ratio = 1.0
    return copied


def new_helper_stack(config: BeatsConfig, num_layers: int, init_weights: Callable[[nn.Module], None]) -> BeatsEncoder:
    """A BEATs layer stack (positional convolution, relative bias, layers) initialised as a new model is."""
    stack = BeatsEncoder(sub_encoder_config(config, num_layers))
    stack.apply(init_weights)
    if config.deep_norm:
        deep_norm_init_(stack.layers)
    return stack


# --------------------------------------------------------------------------------------------------------------
# masked patch prediction: student encoder + label predictor


class BeatsLabelPredictor(nn.Module):
    """Encoded kept patches at their places, zeros at the masked ones -> BEATs layers -> codebook logits."""

    def __init__(self, encoder: BeatsModel, codebook_size: int, num_layers: int = 3):
        super().__init__()
        self.encoder = new_helper_stack(encoder.config, num_layers, encoder._init_weights)
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
# tokenizer training: tokenizer + decoder, EMA codebook


@dataclass
class TokenizerTrainingOutput(ModelOutput):
    """Tokenizer side of one distillation step.

    Args:
        predictions: [B, P, teacher width] the decoder's estimate of the teacher outputs.
        quantizer_vectors: [B, P, D] l2-normalised projections z (with gradients).
        quantized: [B, P, D] their nearest codebook entries e.
        codebook_ids: [B, P] the entries' indices.
    """

    predictions: torch.FloatTensor | None = None
    quantizer_vectors: torch.FloatTensor | None = None
    quantized: torch.FloatTensor | None = None
    codebook_ids: torch.LongTensor | None = None


class TokenizerDecoder(nn.Module):
    """Codebook vectors [B, P, D] -> Linear to the width -> BEATs layers -> Linear to the teacher's width."""

    def __init__(self, tokenizer: BeatsTokenizerModel, num_layers: int, target_size: int):
        super().__init__()
        config = tokenizer.config
        self.input_projection = nn.Linear(config.codebook_dim, config.hidden_size)
        self.encoder = new_helper_stack(config, num_layers, tokenizer._init_weights)
        self.output_projection = nn.Linear(config.hidden_size, target_size)
        for linear in (self.input_projection, self.output_projection):
            tokenizer._init_weights(linear)

    def forward(self, quantized: torch.Tensor) -> torch.Tensor:
        hidden, _, _ = self.encoder(self.input_projection(quantized))
        return self.output_projection(hidden)


class BeatsTokenizerTrainingModel(nn.Module):
    """The trained side of tokenizer distillation: the `BeatsTokenizerModel` and its decoder."""

    def __init__(self, tokenizer: BeatsTokenizerModel, target_size: int, decoder_layers: int = 3):
        super().__init__()
        self.tokenizer = tokenizer
        self.decoder = TokenizerDecoder(tokenizer, decoder_layers, target_size)

    def quantizer_vectors(self, input_values: torch.Tensor) -> torch.Tensor:
        """[B, P, D] float32 l2-normalised projections of the tokenizer's encoder outputs."""
        encoded = self.tokenizer.beats(input_values, return_dict=True).last_hidden_state
        return F.normalize(self.tokenizer.quantizer_projection(encoded).float(), dim=-1)

    def forward(self, input_values: torch.Tensor) -> TokenizerTrainingOutput:
        vectors = self.quantizer_vectors(input_values)
        with autocast_off(vectors.device):
            ids, quantized = self.tokenizer.quantizer(vectors)
        straight_through = vectors + (quantized - vectors).detach()
        return TokenizerTrainingOutput(predictions=self.decoder(straight_through), quantizer_vectors=vectors,
                                       quantized=quantized, codebook_ids=ids)


def tokenizer_losses(output: TokenizerTrainingOutput, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 - mean cosine(prediction, teacher), mean squared error(z, sg(e)))."""
    cosine = F.cosine_similarity(output.predictions.float(), targets.float(), dim=-1).mean()
    commitment = F.mse_loss(output.quantizer_vectors, output.quantized.detach())
    return 1.0 - cosine, commitment


@torch.no_grad()
def teacher_outputs(teacher: BeatsModel, input_values: torch.Tensor) -> torch.Tensor:
    """[B, P, C] float32 last-layer outputs of the frozen teacher."""
    return teacher(input_values, return_dict=True).last_hidden_state.float()


@torch.no_grad()
def spherical_kmeans(vectors: torch.Tensor, num_clusters: int, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(centres [K, D] unit-norm, counts [K]) of cosine k-means on unit vectors [N, D]; starts from random members
    (with repetition when N < K); an empty cluster keeps its centre."""
    count = vectors.shape[0]
    picks = torch.randperm(count)[:num_clusters] if count >= num_clusters else torch.randint(0, count, (num_clusters,))
    centres = vectors[picks.to(vectors.device)].clone()
    counts = torch.zeros(num_clusters, device=vectors.device)
    for _ in range(iterations):
        ids = (vectors @ centres.t()).argmax(dim=1)
        counts = torch.bincount(ids, minlength=num_clusters).float()
        sums = torch.zeros_like(centres).index_add_(0, ids, vectors)
        centres = torch.where((counts > 0)[:, None], F.normalize(sums, dim=-1), centres)
    return centres, counts


def codebook_is_untrained(quantizer: BeatsVectorQuantizer) -> bool:
    """A codebook whose usage average is all zero was never trained (a new tokenizer): it gets a k-means start."""
    return not bool(quantizer.usage_count.any())


@torch.no_grad()
def init_codebook_(quantizer: BeatsVectorQuantizer, vectors: torch.Tensor, iterations: int,
                   share: Callable[[torch.Tensor], torch.Tensor] = lambda tensor: tensor) -> None:
    """k-means start of the codebook on unit vectors [N, D]; `share` makes every process use the same result
    (process 0's). The counts seed `ema_cluster_size` and `usage_count`, the centres `ema_embed_sum`."""
    centres, counts = spherical_kmeans(vectors.float(), quantizer.codebook.shape[0], iterations)
    centres, counts = share(centres), share(counts)
    quantizer.codebook.copy_(centres)
    quantizer.ema_embed_sum.copy_(centres)
    quantizer.ema_cluster_size.copy_(counts)
    quantizer.usage_count.copy_(counts)


@torch.no_grad()
def ema_update_codebook_(quantizer: BeatsVectorQuantizer, vectors: torch.Tensor, ids: torch.Tensor, decay: float,
                         reduce: Callable[[torch.Tensor], torch.Tensor] = lambda tensor: tensor) -> None:
    """Norm-EMA codebook step: e_k <- normalise(decay * e_k + (1 - decay) * normalise(mean of the z assigned to k))
    for used entries; `usage_count` <- EMA of the counts. `reduce` sums counts and sums over processes."""
    size, dim = quantizer.codebook.shape
    flat, flat_ids = vectors.reshape(-1, dim).float(), ids.reshape(-1)
    counts = reduce(torch.bincount(flat_ids, minlength=size).float())
    sums = reduce(torch.zeros(size, dim, device=flat.device).index_add_(0, flat_ids, flat))
    quantizer.usage_count.mul_(decay).add_(counts, alpha=1.0 - decay)
    means = torch.where((counts > 0)[:, None], F.normalize(sums, dim=-1), quantizer.codebook)
    quantizer.codebook.copy_(F.normalize(quantizer.codebook * decay + means * (1.0 - decay), dim=-1))


# --------------------------------------------------------------------------------------------------------------
# building models and data


def _check_source(config: str | None, model: str | None, what: str) -> None:
    if config and model:
        raise ValueError(f"give either config (a config.json for a new {what}) or model (a folder), not both")


def build_student(args: PretrainBeatsArgs) -> tuple[BeatsModel, BeatsFeatureExtractor]:
    """The student encoder and its front end: from a BEATs folder, or new from a config.json (deep-norm init)."""
    _check_source(args.config, args.model, "encoder")
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
        deep_norm_init_(encoder.encoder.layers)
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


def load_teacher(source: str) -> tuple[BeatsModel, BeatsFeatureExtractor]:
    """The frozen teacher encoder (the encoder of a fine-tuned folder too) and its front end."""
    teacher = AutoModel.from_pretrained(source, dtype=torch.float32)
    if type(teacher) is not BeatsModel:
        raise ValueError(f"{source}: the teacher must be a BEATs model folder, got {type(teacher).__name__}")
    return teacher.eval().requires_grad_(False), AutoFeatureExtractor.from_pretrained(source)


ARCHITECTURE_FIELDS = (
    "patch_size", "patch_embed_dim", "patch_embed_bias", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "hidden_act", "layer_norm_first", "deep_norm", "num_conv_pos_embeddings",
    "num_conv_pos_embedding_groups", "conv_pos_weight_norm", "relative_position_embedding", "num_buckets",
    "max_distance", "gated_relative_position_bias", "layer_norm_eps", "num_mel_bins", "sampling_rate",
    "frame_shift_ms",
)


def build_tokenizer(args: TrainTokenizerArgs, teacher: BeatsModel) -> BeatsTokenizerModel:
    """A tokenizer folder to continue, or a new one from a config.json or from the teacher's architecture."""
    _check_source(args.config, args.model, "tokenizer")
    if args.model:
        return BeatsTokenizerModel.from_pretrained(args.model, dtype=torch.float32)
    if args.config:
        config = load_config(args.config)
        if type(config) is not BeatsTokenizerConfig:
            raise ValueError(f"{args.config}: needs model_type {BeatsTokenizerConfig.model_type}, got "
                             f"{config.model_type}")
    else:
        config = BeatsTokenizerConfig(**{name: getattr(teacher.config, name) for name in ARCHITECTURE_FIELDS})
    if args.codebook_size is not None:
        config.codebook_size = args.codebook_size
    if args.codebook_dim is not None:
        config.codebook_dim = args.codebook_dim
    tokenizer = BeatsTokenizerModel(config)
    if config.deep_norm:
        deep_norm_init_(tokenizer.beats.encoder.layers)
    return tokenizer


def _num_patches(config: BeatsConfig, feature_extractor, clip_seconds: float) -> int:
    """Patches of one clip window: (frames // p) * (mel // p), frames as the Kaldi filterbank counts them."""
    rate = feature_extractor.sampling_rate
    samples = round(clip_seconds * rate)
    window = int(rate * feature_extractor.frame_length_ms / 1000)
    shift = int(rate * feature_extractor.frame_shift_ms / 1000)
    frames = 1 + (samples - window) // shift if samples >= window else 0
    return (frames // config.patch_size) * (config.num_mel_bins // config.patch_size)


def _check_common(args: PretrainBeatsArgs | TrainTokenizerArgs, config: BeatsConfig, feature_extractor) -> int:
    """Settings that would fail mid-run fail now; returns the patches per clip."""
    if args.mixed_precision not in ("no", "fp16", "bf16"):
        raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {args.mixed_precision!r}")
    if feature_extractor.num_mel_bins != config.num_mel_bins:
        raise ValueError(f"the feature extractor makes {feature_extractor.num_mel_bins} mel bins, the model expects "
                         f"{config.num_mel_bins}")
    patches = _num_patches(config, feature_extractor, args.clip_seconds)
    if patches < 2:
        raise ValueError(f"clip_seconds {args.clip_seconds} gives {patches} patch(es); use longer windows")
    return patches


def _clip_loader(args: PretrainBeatsArgs | TrainTokenizerArgs, sampling_rate: int) -> torch.utils.data.DataLoader:
    """Shuffled fixed-length windows of the unlabelled clips, checked before anything runs. The loader has its own
    generator: iterating never draws from the global one, whose (checkpointed) state the masks use."""
    examples = pretraining_examples(args.data)
    check_examples(examples, [], sampling_rate, args.resample)
    dataset = ClipDataset(examples, [], sampling_rate, args.clip_seconds, task="multi", train=True)
    return torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                       drop_last=len(dataset) > args.batch_size,
                                       generator=torch.Generator().manual_seed(args.seed))


def _optimiser(model: nn.Module, args: PretrainBeatsArgs | TrainTokenizerArgs, batches_per_epoch: int):
    """AdamW (betas 0.9/0.98, no decay on biases and 1-D tensors) and a warm-up + cosine schedule; total steps."""
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / args.gradient_accumulation_steps))
    total_steps = args.max_steps or steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(parameter_groups(model, args.lr, args.weight_decay), lr=args.lr, betas=(0.9, 0.98))
    return optimizer, build_scheduler(optimizer, "cosine", args.warmup_steps, total_steps), total_steps


# --------------------------------------------------------------------------------------------------------------
# the loop both runs share


def _accelerator(args: PretrainBeatsArgs | TrainTokenizerArgs, output_dir: Path, layerdrop: float):
    """The shared accelerator; with layerdrop, DDP must allow parameters without gradients in a step."""
    return make_accelerator(output_dir, args.mixed_precision, args.gradient_accumulation_steps, args.log_with,
                            args.cpu, find_unused_parameters=layerdrop > 0)


def _resume(accelerator, args: PretrainBeatsArgs | TrainTokenizerArgs, output_dir: Path, state: TrainingState) -> None:
    """Restore model, optimiser, schedule, random states and registered objects from a checkpoint."""
    if not args.resume:
        return
    checkpoint = latest_checkpoint(output_dir) if args.resume == "latest" else Path(args.resume)
    accelerator.load_state(str(checkpoint))
    accelerator.project_configuration.iteration = int(checkpoint.name.split("_")[-1]) + 1
    accelerator.print(f"resumed from {checkpoint} at epoch {state.epoch}, step {state.step}")


def _train(accelerator, model: nn.Module, optimizer, scheduler, loader, state: TrainingState,
           args: PretrainBeatsArgs | TrainTokenizerArgs, total_steps: int, description: str,
           batch_loss: Callable[[dict], tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> bool:
    """Optimiser steps over epochs (mid-epoch resume, checkpoints, max_steps); `batch_loss(batch)` gives the loss
    and extra values to log. Returns True when `stop_after_steps` ended the run."""
    stop = done = False
    model.train()
    progress = tqdm(total=total_steps, initial=state.step, desc=description, unit="step",
                    disable=not accelerator.is_local_main_process)
    while state.epoch < args.epochs and not (stop or done):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(state.epoch)
        batches = accelerator.skip_first_batches(loader, state.batches_in_epoch) if state.batches_in_epoch else loader
        for batch in batches:
            state.batches_in_epoch += 1
            with accelerator.accumulate(model):
                loss, extra = batch_loss(batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            _record(accelerator, state, progress, scheduler, loss, extra)
            if args.checkpoint_every and state.step % args.checkpoint_every == 0:
                accelerator.save_state()
            if args.stop_after_steps and state.step >= args.stop_after_steps:
                stop = True
                break
            if args.max_steps and state.step >= args.max_steps:
                done = True
                break
        if stop:
            break
        if not done:
            state.epoch += 1
            state.batches_in_epoch = 0
            if not args.checkpoint_every:
                accelerator.save_state()
    progress.close()
    if stop:  # interrupted on purpose (tests): the checkpoint is the result
        accelerator.save_state()
    return stop


def _record(accelerator, state: TrainingState, progress, scheduler, loss: torch.Tensor,
            extra: dict[str, torch.Tensor]) -> None:
    """Loss (averaged over processes) into the state, the progress bar and the trackers."""
    names = ["loss", *extra]
    values = torch.stack([loss.detach().float(), *(value.detach().float() for value in extra.values())])
    values = accelerator.gather(values[None]).mean(dim=0)
    logged = {f"train/{name}": float(value) for name, value in zip(names, values, strict=True)}
    state.losses.append((state.step, logged["train/loss"]))
    progress.update(1)
    progress.set_postfix(loss=f"{logged['train/loss']:.4f}", epoch=state.epoch)
    accelerator.log({**logged, "lr": scheduler.get_last_lr()[-1]}, step=state.step)


def _save(accelerator, model: nn.Module, feature_extractor, output_dir: Path, result) -> None:
    """`model` (a PreTrainedModel) + front end as a ready-to-use folder, and results.json."""
    accelerator.wait_for_everyone()
    model.save_pretrained(output_dir, is_main_process=accelerator.is_main_process, save_function=accelerator.save)
    if accelerator.is_main_process:
        feature_extractor.save_pretrained(output_dir)
        (output_dir / "results.json").write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")


def _trackers(accelerator, name: str, args) -> None:
    if args.log_with:
        accelerator.init_trackers(name, config={key: value for key, value in asdict(args).items() if value is not None})


# --------------------------------------------------------------------------------------------------------------
# masked patch prediction


def run_pretrain_beats(args: PretrainBeatsArgs) -> PretrainBeatsResult:
    """Pre-train (or continue pre-training) a BEATs encoder by masked patch prediction; saved to `output_dir`."""
    started = time.perf_counter()
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # 1. student, tokenizer and data, checked before anything runs
    encoder, feature_extractor = build_student(args)
    num_patches = _check_common(args, encoder.config, feature_extractor)
    kept_patch_count(num_patches, args.mask_ratio)  # raises if the ratio leaves no kept or no masked patch
    tokenizer = build_patch_tokenizer(args, encoder.config)
    loader = _clip_loader(args, feature_extractor.sampling_rate)

    # 2. the trained side (student + predictor), optimiser and schedule
    model = BeatsPretrainingModel(encoder, tokenizer.codebook_size, args.predictor_layers)
    optimizer, scheduler, total_steps = _optimiser(model, args, len(loader))

    # 3. accelerator; the frozen tokenizer stays out of prepare, a random one is checkpointed
    accelerator = _accelerator(args, output_dir, encoder.config.layerdrop)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    tokenizer.to(accelerator.device)
    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    if tokenizer.is_random_projection:
        accelerator.register_for_checkpointing(tokenizer.module)
    _trackers(accelerator, "audiozoo-pretrain-beats", args)
    _resume(accelerator, args, output_dir, state)

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

    stopped = _train(accelerator, model, optimizer, scheduler, loader, state, args, total_steps, "pretrain beats",
                     batch_loss)
    result = PretrainBeatsResult(str(output_dir), state.losses, time.perf_counter() - started, state.step)
    if stopped:
        accelerator.end_training()
        return result

    # 5. the student encoder + front end (AutoModel / AutoFeatureExtractor), and the random tokenizer's tensors
    _save(accelerator, accelerator.unwrap_model(model).encoder, feature_extractor, output_dir, result)
    if tokenizer.is_random_projection and accelerator.is_main_process:
        tokenizer.module.save(output_dir / RANDOM_TOKENIZER_FILE)
    accelerator.end_training()
    return result


# --------------------------------------------------------------------------------------------------------------
# tokenizer distillation


def run_train_tokenizer(args: TrainTokenizerArgs) -> TrainTokenizerResult:
    """Train (or continue training) a BEATs acoustic tokenizer by distillation from `args.teacher`."""
    started = time.perf_counter()
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # 1. teacher, tokenizer and data, checked before anything runs
    teacher, feature_extractor = load_teacher(args.teacher)
    tokenizer = build_tokenizer(args, teacher)
    _check_common(args, tokenizer.config, feature_extractor)
    if (tokenizer.config.patch_size, tokenizer.config.num_mel_bins) != (teacher.config.patch_size,
                                                                         teacher.config.num_mel_bins):
        raise ValueError("the tokenizer and the teacher must cut the same patches (patch_size / num_mel_bins differ)")
    loader = _clip_loader(args, feature_extractor.sampling_rate)

    # 2. the trained side (tokenizer + decoder), optimiser and schedule
    model = BeatsTokenizerTrainingModel(tokenizer, teacher.config.hidden_size, args.decoder_layers)
    optimizer, scheduler, total_steps = _optimiser(model, args, len(loader))

    # 3. accelerator; the frozen teacher stays out of prepare and out of the checkpoints (reloaded from its folder)
    accelerator = _accelerator(args, output_dir, tokenizer.config.layerdrop)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    teacher.to(accelerator.device)
    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    _trackers(accelerator, "audiozoo-pretrain-beats-tokenizer", args)
    _resume(accelerator, args, output_dir, state)
    trained = accelerator.unwrap_model(model)
    quantizer = trained.tokenizer.quantizer

    # 4. training; the codebook moves by EMA after every forward, with counts and sums of all processes
    def batch_loss(batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = compute_features(feature_extractor, batch["waveform"], accelerator.device)
        if codebook_is_untrained(quantizer):  # a new codebook starts from k-means on the first batch
            with torch.no_grad(), accelerator.autocast():
                vectors = trained.quantizer_vectors(features)
            init_codebook_(quantizer, accelerator.gather(vectors.reshape(-1, vectors.shape[-1])),
                           args.kmeans_iterations, lambda tensor: broadcast(tensor, from_process=0))
        with accelerator.autocast():
            targets = teacher_outputs(teacher, features)
            output = model(features)
        distillation, commitment = tokenizer_losses(output, targets)
        ema_update_codebook_(quantizer, output.quantizer_vectors.detach(), output.codebook_ids, args.codebook_decay,
                             lambda tensor: accelerator.reduce(tensor, "sum"))
        loss = distillation + args.commitment_weight * commitment
        return loss, {"cosine_loss": distillation, "commitment_loss": commitment}

    stopped = _train(accelerator, model, optimizer, scheduler, loader, state, args, total_steps,
                     "pretrain beats_tokenizer", batch_loss)
    result = TrainTokenizerResult(str(output_dir), state.losses, time.perf_counter() - started, state.step,
                                  int((quantizer.usage_count > 0).sum()))
    if not stopped:  # 5. the tokenizer + front end (AutoModel / AutoFeatureExtractor)
        _save(accelerator, trained.tokenizer, feature_extractor, output_dir, result)
    accelerator.end_training()
    return result


# --------------------------------------------------------------------------------------------------------------
# command line


def _add_common_arguments(parser: argparse.ArgumentParser, defaults) -> None:
    """Data, schedule, precision and checkpoint flags both commands share."""
    parser.add_argument("--data", required=True,
                        help="folder of audio files (any depth), CSV/TSV manifest (labels ignored) or datasets folder")
    parser.add_argument("--output_dir", required=True)
    for name, kind, text in (
        ("clip_seconds", float, "window length (random crop of longer clips, zeros after shorter ones)"),
        ("epochs", int, None), ("max_steps", int, "optimiser steps (overrides epochs)"),
        ("batch_size", int, "clips per process and micro-batch"), ("lr", float, None), ("weight_decay", float, None),
        ("warmup_steps", int, None), ("max_grad_norm", float, None), ("gradient_accumulation_steps", int, None),
        ("checkpoint_every", int, "optimiser steps between checkpoints (0: every epoch)"),
        ("resume", str, "a checkpoint folder or 'latest'"), ("seed", int, None),
        ("log_with", str, "an accelerate tracker (tensorboard, wandb, ...)"),
    ):
        parser.add_argument(f"--{name}", type=kind, default=getattr(defaults, name), help=text)
    parser.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--resample", action="store_true", help="resample clips at other rates (soxr)")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is there")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `audiozoo pretrain beats` (masked patch prediction)."""
    defaults = PretrainBeatsArgs(data="", output_dir="")
    _add_common_arguments(parser, defaults)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="config.json of a new encoder (model_type audiozoo-beats)")
    source.add_argument("--model", help="BEATs folder or Hub id to continue pre-training")
    parser.add_argument("--tokenizer", help="BEATs tokenizer folder (default: a random-projection tokenizer, "
                                            "iteration 1) or a saved random_projection_tokenizer.safetensors")
    for name, kind, text in (
        ("codebook_size", int, "random-projection tokenizer only"), ("codebook_dim", int, "random projection only"),
        ("tokenizer_seed", int, "random projection only (default: --seed)"), ("mask_ratio", float, None),
        ("predictor_layers", int, "Transformer layers of the label predictor"), ("label_smoothing", float, None),
    ):
        parser.add_argument(f"--{name}", type=kind, default=getattr(defaults, name), help=text)


def add_tokenizer_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `audiozoo pretrain beats_tokenizer` (distillation from a BEATs teacher)."""
    defaults = TrainTokenizerArgs(data="", output_dir="", teacher="")
    _add_common_arguments(parser, defaults)
    parser.add_argument("--teacher", required=True, help="BEATs folder or Hub id (pre-trained or fine-tuned)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="config.json of a new tokenizer (default: the teacher's architecture)")
    source.add_argument("--model", help="tokenizer folder to continue training")
    for name, kind, text in (
        ("codebook_size", int, "new tokenizer (default 1024)"), ("codebook_dim", int, "new tokenizer (default 256)"),
        ("decoder_layers", int, None), ("codebook_decay", float, "EMA decay of the codebook"),
        ("commitment_weight", float, None), ("kmeans_iterations", int, "k-means start of a new codebook"),
    ):
        parser.add_argument(f"--{name}", type=kind, default=getattr(defaults, name), help=text)


def _values(args: argparse.Namespace, kind: type) -> dict:
    return {key: value for key, value in vars(args).items() if key in kind.__dataclass_fields__}


def main(args: argparse.Namespace) -> int:
    """`audiozoo pretrain beats`."""
    result = run_pretrain_beats(PretrainBeatsArgs(**_values(args, PretrainBeatsArgs)))
    last = f"; last loss {result.losses[-1][1]:.4f}" if result.losses else ""
    print(f"{result.steps} steps{last}; encoder in {result.output_dir}; {result.seconds:.1f} s")
    return 0


def main_tokenizer(args: argparse.Namespace) -> int:
    """`audiozoo pretrain beats_tokenizer`."""
    result = run_train_tokenizer(TrainTokenizerArgs(**_values(args, TrainTokenizerArgs)))
    last = f"; last loss {result.losses[-1][1]:.4f}" if result.losses else ""
    print(f"{result.steps} steps{last}; {result.codes_used} codes used; tokenizer in {result.output_dir}; "
          f"{result.seconds:.1f} s")
    return 0


__all__ = [
    "BeatsLabelPredictor",
    "BeatsPretrainingModel",
    "BeatsTokenizerTrainingModel",
    "PretrainBeatsArgs",
    "PretrainBeatsResult",
    "TokenizerDecoder",
    "TokenizerTrainingOutput",
    "TrainTokenizerArgs",
    "TrainTokenizerResult",
    "add_arguments",
    "add_tokenizer_arguments",
    "codebook_is_untrained",
    "deep_norm_init_",
    "ema_update_codebook_",
    "encode_kept_patches",
    "init_codebook_",
    "kept_patch_count",
    "main",
    "main_tokenizer",
    "masked_prediction_loss",
    "random_patch_split",
    "run_pretrain_beats",
    "run_train_tokenizer",
    "spherical_kmeans",
    "teacher_outputs",
    "tokenizer_losses",
]
