"""Frozen acoustic tokenizers that give every BEATs patch a codebook id, the labels of masked patch prediction.

Two kinds (Chen et al., ICML 2023, Sec. 3):
- iteration 1: `RandomProjectionTokenizer`, a fixed random linear projection of each flattened 16 x 16 filterbank
  patch, l2-normalised, and its nearest neighbour in a fixed random, l2-normalised codebook (the
  random-projection quantizer of BEST-RQ, Chiu et al. 2022). Nothing is trained; a seed decides everything, and
  the tensors are saved with the training checkpoints and next to the trained model, so the labels can always
  be reproduced;
- later iterations: a trained `BeatsTokenizerModel` folder (`audiozoo pretrain beats_tokenizer` writes one).

`FrozenTokenizer` hides the difference: features [B, T, mel] -> codebook ids [B, P], time-major like the
student's patch tokens (patch p = time step p // F, mel band p % F, with F = mel bins // patch size).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig

from ..models.beats import BeatsTokenizerConfig, BeatsTokenizerModel

RANDOM_TOKENIZER_FILE = "random_projection_tokenizer.safetensors"


def patchify(input_values: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[B, T, M] filterbank -> [B, (T // p) * (M // p), p * p] flattened patches, time-major, as BEATs' patch
    convolution sees them (trailing T % p frames and M % p bins dropped); each patch is flattened time-major."""
    batch, frames, bins = input_values.shape
    steps, bands = frames // patch_size, bins // patch_size
    grid = input_values[:, : steps * patch_size, : bands * patch_size]
    grid = grid.reshape(batch, steps, patch_size, bands, patch_size).permute(0, 1, 3, 2, 4)
    return grid.reshape(batch, steps * bands, patch_size * patch_size)


def autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast off on `device`, so that nearest-neighbour searches run in float32 whatever the training precision
    (a bfloat16 distance can flip the nearest entry)."""
    return torch.autocast(device_type=device.type, enabled=False)


class RandomProjectionTokenizer(nn.Module):
    """Iteration-1 tokenizer: ids = argmax_k cos(patch @ projection, codebook[k]).

    `projection` [p * p, codebook_dim] and `codebook` [codebook_size, codebook_dim] are standard-normal draws of a
    generator seeded with `seed` (projection first), kept as buffers. Only directions matter after the l2
    normalisation, so the projection's scale (Xavier in BEST-RQ) is irrelevant.
    """

    def __init__(self, patch_size: int = 16, codebook_size: int = 1024, codebook_dim: int = 256, seed: int = 0):
        super().__init__()
        self.patch_size, self.seed = patch_size, seed
        generator = torch.Generator().manual_seed(seed)
        projection = torch.randn(patch_size * patch_size, codebook_dim, generator=generator)
        codebook = torch.randn(codebook_size, codebook_dim, generator=generator)
        self.register_buffer("projection", projection)
        self.register_buffer("codebook", F.normalize(codebook, dim=-1))

    @property
    def codebook_size(self) -> int:
        return self.codebook.shape[0]

    @torch.no_grad()
    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        """[B, T, M] features -> [B, P] codebook ids (float32, autocast off)."""
        with autocast_off(input_values.device):
            patches = patchify(input_values.float(), self.patch_size)
            projected = F.normalize(patches @ self.projection, dim=-1)
            return (projected @ self.codebook.t()).argmax(dim=-1)

    def save(self, path: str | Path) -> None:
        """Write the tensors and settings to one safetensors file."""
        metadata = {"patch_size": str(self.patch_size), "seed": str(self.seed)}
        save_file({"projection": self.projection.cpu().contiguous(), "codebook": self.codebook.cpu().contiguous()},
                  str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> RandomProjectionTokenizer:
        """The tokenizer `save` wrote (exactly its tensors, not a new draw)."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
        size, dim = tensors["codebook"].shape
        patch_size = round(tensors["projection"].shape[0] ** 0.5)
        tokenizer = cls(patch_size, size, dim, int(metadata.get("seed", 0)))
        tokenizer.load_state_dict(tensors)
        return tokenizer


class FrozenTokenizer:
    """Codebook ids [B, P] from a random-projection tokenizer or a `BeatsTokenizerModel`, never trained.

    The model tokenizer's encoder may run under the caller's autocast (`autocast`, e.g. `accelerator.autocast`);
    its nearest-neighbour search always runs in float32.
    """

    def __init__(self, module: RandomProjectionTokenizer | BeatsTokenizerModel):
        self.module = module.eval().requires_grad_(False)

    @property
    def is_random_projection(self) -> bool:
        return isinstance(self.module, RandomProjectionTokenizer)

    @property
    def codebook_size(self) -> int:
        if self.is_random_projection:
            return self.module.codebook_size
        return self.module.config.codebook_size

    @property
    def patch_size(self) -> int:
        return self.module.patch_size if self.is_random_projection else self.module.config.patch_size

    def to(self, device: torch.device | str) -> FrozenTokenizer:
        self.module.to(device)
        return self

    @torch.no_grad()
    def __call__(self, input_values: torch.Tensor,
                 autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> torch.Tensor:
        """[B, T, M] features -> [B, P] long codebook ids."""
        if self.is_random_projection:
            return self.module(input_values)
        with autocast():
            encoded = self.module.beats(input_values, return_dict=True).last_hidden_state
            quantizer_input = self.module.quantizer_projection(encoded)
        with autocast_off(input_values.device):
            ids, _ = self.module.quantizer(quantizer_input.float())
        return ids


def load_frozen_tokenizer(source: str | None, patch_size: int = 16, codebook_size: int = 1024,
                          codebook_dim: int = 256, seed: int = 0) -> FrozenTokenizer:
    """None: a new random-projection tokenizer (`patch_size`, `codebook_size`, `codebook_dim`, `seed`); a
    `.safetensors` file: a saved random-projection tokenizer; anything else: a `BeatsTokenizerModel` folder/Hub id."""
    if source is None:
        return FrozenTokenizer(RandomProjectionTokenizer(patch_size, codebook_size, codebook_dim, seed))
    if str(source).endswith(".safetensors"):
        return FrozenTokenizer(RandomProjectionTokenizer.load(source))
    config = AutoConfig.from_pretrained(source)
    if config.model_type != BeatsTokenizerConfig.model_type:
        raise ValueError(f"{source}: expected a BEATs tokenizer folder (model_type {BeatsTokenizerConfig.model_type}), "
                         f"got model_type {config.model_type}")
    return FrozenTokenizer(BeatsTokenizerModel.from_pretrained(source, dtype=torch.float32))


__all__ = [
    "RANDOM_TOKENIZER_FILE",
    "FrozenTokenizer",
    "RandomProjectionTokenizer",
    "autocast_off",
    "load_frozen_tokenizer",
    "patchify",
]
