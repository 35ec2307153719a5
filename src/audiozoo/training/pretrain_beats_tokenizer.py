"""`audiozoo pretrain beats_tokenizer`: training of BEATs' acoustic tokenizer by distillation from a BEATs teacher
(Chen et al., "BEATs: Audio Pre-Training with Acoustic Tokenizers", ICML 2023), one accelerate loop; the
tokenizer then labels the patches of the next `audiozoo pretrain beats` iteration (see `pretrain_beats`).

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

The paper gives the scheme above (tokenizer = encoder + quantizer with l2-normalised EMA codebook, straight-through
estimation, a small Transformer decoder, cosine similarity to the teacher's last layer). The training code was
never released, and the paper text could not be checked here, so every detail below is an assumption of this
module (the quantizer details follow the released quantizer code; those it shares with masked patch prediction,
on initialisation, optimisation and data, are listed in `common_beats`):
- tokenizer: same architecture as the teacher unless a config is given, codebook 1024 x 256, decay 0.99,
  commitment weight 1 (the released quantizer's beta), spherical k-means initialisation (10 iterations) of a
  never-trained codebook on the first batch, as the released quantizer's `kmeans_init`; decoder of 3 layers;
  `usage_count` holds the EMA of the per-entry counts (the original's `quantize.cluster_size`);
- a new tokenizer and the decoder layers get the original's deep-norm initialisation.

Multi-process: layerdrop needs DDP's `find_unused_parameters=True` (see `common_beats`); the teacher is never
wrapped or sharded; the codebook EMA runs on whole tensors (not on FSDP / ZeRO-3 shards).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate.utils import broadcast, set_seed
from torch import nn
from transformers import AutoFeatureExtractor, AutoModel
from transformers.modeling_outputs import ModelOutput

from ..models.beats import (
    BeatsFeatureExtractor,
    BeatsModel,
    BeatsTokenizerConfig,
    BeatsTokenizerModel,
)
from ..models.beats.modeling_beats import BeatsVectorQuantizer
from . import common_beats, loop
from .common import PretrainResult, TrainingState, compute_features, load_config
from .options import TrainTokenizerArgs, options_from, summary_line
from .options import add_beats_tokenizer_arguments as add_tokenizer_arguments
from .tokenizers_beats import autocast_off

# --------------------------------------------------------------------------------------------------------------
# arguments and results


@dataclass
class TrainTokenizerResult(PretrainResult):
    """Output folder, per-step losses, wall time, optimiser steps, and the codebook entries in use."""

    codes_used: int = 0  # codebook entries ever used (non-zero usage average) at the end


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
        self.encoder = common_beats.new_helper_stack(config, num_layers, tokenizer._init_weights)
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
# building the teacher and the tokenizer


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
    common_beats.check_source(args.config, args.model, "tokenizer")
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
        common_beats.deep_norm_init_(tokenizer.beats.encoder.layers)
    return tokenizer


# --------------------------------------------------------------------------------------------------------------
# the loop


def run_train_tokenizer(args: TrainTokenizerArgs) -> TrainTokenizerResult:
    """Train (or continue training) a BEATs acoustic tokenizer by distillation from `args.teacher`."""
    started = time.perf_counter()
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # 1. teacher, tokenizer and data, checked before anything runs
    teacher, feature_extractor = load_teacher(args.teacher)
    tokenizer = build_tokenizer(args, teacher)
    common_beats.check_run(args, tokenizer.config, feature_extractor)
    if (tokenizer.config.patch_size, tokenizer.config.num_mel_bins) != (teacher.config.patch_size,
                                                                         teacher.config.num_mel_bins):
        raise ValueError("the tokenizer and the teacher must cut the same patches (patch_size / num_mel_bins differ)")
    loader = common_beats.clip_loader(args, args.data, feature_extractor.sampling_rate)

    # 2. the trained side (tokenizer + decoder), optimiser and schedule
    model = BeatsTokenizerTrainingModel(tokenizer, teacher.config.hidden_size, args.decoder_layers)
    optimizer, scheduler, total_steps = common_beats.build_optimiser(model, args, len(loader))

    # 3. accelerator; the frozen teacher stays out of prepare and out of the checkpoints (reloaded from its folder)
    accelerator = common_beats.beats_accelerator(args, output_dir, tokenizer.config.layerdrop)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    teacher.to(accelerator.device)
    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    loop.init_trackers(accelerator, "audiozoo-pretrain-beats-tokenizer", args)
    loop.resume(accelerator, args, output_dir, state)
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

    stopped = loop.train_steps(accelerator, model, optimizer, scheduler, loader, state, args, total_steps,
                               "pretrain beats_tokenizer", batch_loss)
    result = TrainTokenizerResult(str(output_dir), state.losses, time.perf_counter() - started, state.step,
                                  int((quantizer.usage_count > 0).sum()))
    if not stopped:  # 5. the tokenizer + front end (AutoModel / AutoFeatureExtractor)
        loop.save_model_folder(accelerator, trained.tokenizer, feature_extractor, output_dir)
        loop.write_results(accelerator, output_dir, result)
    accelerator.end_training()
    return result


# --------------------------------------------------------------------------------------------------------------
# command line


def main_tokenizer(args: argparse.Namespace) -> int:
    """`audiozoo pretrain beats_tokenizer`."""
    result = run_train_tokenizer(options_from(args, TrainTokenizerArgs))
    print(summary_line(result, f"{result.steps} steps", f"{result.codes_used} codes used; tokenizer"))
    return 0


__all__ = [
    "BeatsTokenizerTrainingModel",
    "TokenizerDecoder",
    "TokenizerTrainingOutput",
    "TrainTokenizerArgs",
    "TrainTokenizerResult",
    "add_tokenizer_arguments",
    "codebook_is_untrained",
    "ema_update_codebook_",
    "init_codebook_",
    "main_tokenizer",
    "run_train_tokenizer",
    "spherical_kmeans",
    "teacher_outputs",
    "tokenizer_losses",
]
