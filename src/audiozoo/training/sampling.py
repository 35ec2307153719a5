"""Class-balanced sampling for multi-label data (rare classes drawn as often as frequent ones, in expectation)."""

from __future__ import annotations

import numpy as np
import torch


def class_balanced_weights(targets: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Per-example weights from many-hot targets [N, C]: each class weighs 1 / (its count + offset), an example
    the sum over its classes (examples without labels get the smallest class weight)."""
    if targets.ndim != 2:
        raise ValueError(f"targets must be many-hot [examples, classes], got shape {targets.shape}")
    counts = targets.sum(axis=0) + offset
    class_weight = np.where(counts > 0, 1.0 / np.maximum(counts, 1e-12), 0.0)
    weights = targets @ class_weight
    floor = class_weight[class_weight > 0].min() if (class_weight > 0).any() else 1.0
    return np.where(weights > 0, weights, floor)


def balanced_sampler(targets: np.ndarray, num_samples: int | None = None, seed: int = 0
                     ) -> torch.utils.data.WeightedRandomSampler:
    """A WeightedRandomSampler (with replacement) over `class_balanced_weights`."""
    weights = torch.as_tensor(class_balanced_weights(targets), dtype=torch.double)
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.WeightedRandomSampler(weights, num_samples or len(weights), replacement=True,
                                                  generator=generator)


__all__ = ["balanced_sampler", "class_balanced_weights"]
