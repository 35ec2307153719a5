"""Optimiser parameter groups (layer-wise lr decay, no weight decay on norms and biases) and lr schedules."""

from __future__ import annotations

import math
import re

import torch
from transformers import get_cosine_schedule_with_warmup, get_constant_schedule_with_warmup

LAYER_PATTERN = re.compile(r"(?:^|\.)(?:layers|blocks)\.(\d+)\.")
HEAD_PREFIXES = ("classifier", "sed_head", "head", "projector", "predictor", "decoder")


def layer_id(name: str, num_layers: int) -> int:
    """0 for embeddings/front layers, i + 1 for transformer layer i, num_layers + 1 for heads and the rest after."""
    match = LAYER_PATTERN.search(name)
    if match:
        return int(match.group(1)) + 1
    if name.startswith(HEAD_PREFIXES) or ".layer_norm." in name and name.count(".") <= 2:
        return num_layers + 1
    return 0


def parameter_groups(model: torch.nn.Module, lr: float, weight_decay: float = 0.0, layer_decay: float = 1.0
                     ) -> list[dict]:
    """AdamW groups: lr * layer_decay ** (L + 1 - layer_id) (heads get `lr`, the embeddings the smallest), and
    no weight decay on biases, norms and other 1-D parameters (token tables are 3-D and do decay)."""
    named = [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]
    num_layers = max((int(m.group(1)) + 1 for name, _ in named if (m := LAYER_PATTERN.search(name))), default=0)
    groups: dict[tuple[int, bool], dict] = {}
    for name, parameter in named:
        layer = layer_id(name, num_layers)
        decay = parameter.ndim >= 2 and "norm" not in name
        key = (layer, decay)
        if key not in groups:
            scale = layer_decay ** (num_layers + 1 - layer)
            groups[key] = {"params": [], "names": [], "lr": lr * scale, "weight_decay": weight_decay if decay else 0.0,
                           "layer": layer}
        groups[key]["params"].append(parameter)
        groups[key]["names"].append(name)
    return [groups[key] for key in sorted(groups)]


def build_scheduler(optimizer: torch.optim.Optimizer, kind: str, warmup_steps: int, total_steps: int,
                    step_size: int | None = None, gamma: float = 0.1):
    """"cosine" (warmup then cosine to 0), "constant" (warmup then flat) or "step" (warmup, then x gamma every
    step_size steps)."""
    if kind == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup_steps, max(total_steps, warmup_steps + 1))
    if kind == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup_steps)
    if kind == "step":
        every = step_size or max(1, total_steps // 3)

        def factor(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / max(1, warmup_steps)
            return gamma ** math.floor((step - warmup_steps) / every)

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    raise ValueError(f"scheduler must be cosine, constant or step, got {kind!r}")


__all__ = ["build_scheduler", "layer_id", "parameter_groups"]
