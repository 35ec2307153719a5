"""Inverse block masking of EAT / data2vec 2.0 on the (time x frequency) patch grid, and multi-mask clones.

Follows `compute_block_mask_2d` (EAT utils/data_utils.py) with `inverse_mask=True`, `require_same_masks=True`,
no mask dropout and no `expand_adjcent`, as EAT's pre-training configs use it:

1. the KEPT share is `keep = 1 - mask_ratio`; `int(L * (keep + mask_prob_adjust) / block_size**2)` block centres
   are drawn uniformly (with repetition) on the L = time x frequency patches;
2. every centre grows to a `block_size` x `block_size` block (offsets -block_size//2 ..), cut at the grid edges;
3. random patches are added or removed so that exactly `int(L * keep)` patches are kept in every row (batches
   stay rectangular once the masked patches are removed);
4. everything else is masked (to be predicted).

Step 3 draws random scores and keeps the top ones instead of the original's per-row `torch.multinomial`: the
same distribution (uniform choice among the candidates), other random numbers. All draws use torch's global
generator, which accelerate checkpoints, so a resumed run draws the masks the first run would have drawn.
Multi-mask: `clone_batch` masks per clip, rows ordered as `repeat_interleave` (the clones of clip b are rows
b * clone_batch ... b * clone_batch + clone_batch - 1), as the original clones its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kept_patch_count(num_patches: int, mask_ratio: float) -> int:
    """Patches every row keeps: int(L * (1 - mask_ratio)), the original's `int(L * mask_prob)` after inversion."""
    return int(num_patches * (1 - mask_ratio))


def block_centres(batch: int, grid: tuple[int, int], count: int, device: torch.device | str | None = None
                  ) -> torch.Tensor:
    """[B, T, F] float map with 1.0 at `count` uniformly drawn centres per row (repeats collapse, as the original)."""
    time_patches, frequency_patches = grid
    centres = torch.zeros(batch, time_patches * frequency_patches, device=device)
    if count > 0:
        positions = torch.randint(0, time_patches * frequency_patches, (batch, count), device=device)
        centres.scatter_(1, positions, 1.0)
    return centres.view(batch, time_patches, frequency_patches)


def grow_blocks(centres: torch.Tensor, block_size: int) -> torch.Tensor:
    """Grow every centre of a [B, T, F] map to a block_size x block_size block cut at the grid edges -> bool [B, T, F].

    Offsets run from -block_size // 2 to block_size - 1 - block_size // 2 (the original's `i - mask_length // 2`);
    its clamping of out-of-grid offsets onto the edge only re-marks cells the block already covers, so it is a cut.
    A max-pool over the padded map marks a cell when any centre lies within those offsets of it.
    """
    before, after = block_size - 1 - block_size // 2, block_size // 2
    padded = F.pad(centres.float().unsqueeze(1), (before, after, before, after))
    return F.max_pool2d(padded, kernel_size=block_size, stride=1).squeeze(1) > 0


def exact_count(kept: torch.Tensor, count: int) -> torch.Tensor:
    """Bool [B, L] with exactly `count` True per row: random members of `kept` are dropped when there are too many,
    random other patches added when there are too few (scores: uniform noise + 1 on `kept`, top `count` win)."""
    scores = torch.rand(kept.shape, device=kept.device) + kept.float()
    chosen = scores.topk(count, dim=1).indices
    return torch.zeros_like(kept, dtype=torch.bool).scatter_(1, chosen, True)


def inverse_block_mask(batch: int, grid: tuple[int, int], mask_ratio: float = 0.8, block_size: int = 5,
                       mask_prob_adjust: float = 0.07, device: torch.device | str | None = None) -> torch.Tensor:
    """EAT's inverse block mask: bool [B, T * F], True on the MASKED patches (time-major, token = t * F + f);
    every row keeps exactly `kept_patch_count(T * F, mask_ratio)` patches, grouped in blocks."""
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    num_patches = grid[0] * grid[1]
    keep = kept_patch_count(num_patches, mask_ratio)
    if keep < 1:
        raise ValueError(f"mask_ratio {mask_ratio} keeps no patch of the {grid[0]} x {grid[1]} grid")
    centres = int(num_patches * ((1 - mask_ratio) + mask_prob_adjust) / block_size**2)
    kept = grow_blocks(block_centres(batch, grid, centres, device), block_size).view(batch, num_patches)
    return ~exact_count(kept, keep)


def multi_mask(batch: int, clone_batch: int, grid: tuple[int, int], mask_ratio: float = 0.8, block_size: int = 5,
               mask_prob_adjust: float = 0.07, device: torch.device | str | None = None) -> torch.Tensor:
    """`clone_batch` independent masks per clip: bool [B * clone_batch, T * F], clones of a clip on adjacent rows."""
    if clone_batch < 1:
        raise ValueError(f"clone_batch must be at least 1, got {clone_batch}")
    return inverse_block_mask(batch * clone_batch, grid, mask_ratio, block_size, mask_prob_adjust, device)


def kept_indices(mask: torch.Tensor) -> torch.Tensor:
    """[N, K] indices of the kept (False) patches of every row, ascending; every row must keep K patches."""
    rows = mask.shape[0]
    return (~mask).nonzero()[:, 1].view(rows, -1)


def clip_of_rows(batch: int, clone_batch: int, device: torch.device | str | None = None) -> torch.Tensor:
    """[B * clone_batch] clip index of every cloned row (0, 0, ..., 1, 1, ...), as `repeat_interleave` orders them."""
    return torch.arange(batch, device=device).repeat_interleave(clone_batch)


__all__ = [
    "block_centres",
    "clip_of_rows",
    "exact_count",
    "grow_blocks",
    "inverse_block_mask",
    "kept_indices",
    "kept_patch_count",
    "multi_mask",
]
