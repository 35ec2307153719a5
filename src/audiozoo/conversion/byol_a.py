"""Original BYOL-A weights (nttcslab/byol-a, v1 AudioNTT2020 and v2 AudioNTT2022) -> audiozoo BYOL-A models.

Accepts the released .pth files (plain state dicts) and training checkpoints with wrappers: a top-level
`state_dict` and/or `model`, and key prefixes such as `learner.online_encoder.net.` or `body.`, which are
stripped up to `features.` / `fc.` as the original loaders do. Sizes come from the tensors: d from fc.3 (plus
the 1024 conv features for v2), the MLP width from fc.0, the version from the number of conv blocks.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from ..models.byol_a import BYOL_A_NORM_PRESETS, ByolAConfig, ByolAFeatureExtractor, ByolAModel
from .common import CheckpointError, load_state_dict_strictly, load_torch_checkpoint, rename_keys

logger = logging.getLogger(__name__)

_ENCODER_KEY = re.compile(r"(^|\.)((?:features|fc)\..*)$")


def encoder_state_dict(checkpoint) -> dict[str, torch.Tensor]:
    """The encoder's `features.*` / `fc.*` tensors, whatever wraps them; several copies (online/target encoders of
    a training checkpoint) are resolved in favour of the online encoder, which BYOL trains, and the log says so."""
    for wrapper in ("state_dict", "model"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"not a BYOL-A checkpoint: expected a state dict, found {type(checkpoint).__name__}")
    found: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for key, value in checkpoint.items():
        match = _ENCODER_KEY.search(key)
        if match and isinstance(value, torch.Tensor):
            found.setdefault(match.group(2), []).append((key, value))
    if "fc.0.weight" not in found or "features.0.weight" not in found:
        raise CheckpointError(
            "not a BYOL-A checkpoint: no features.* / fc.* encoder weights (expected the AudioNTT2020/2022 layout: "
            f"features.0.weight, fc.0.weight, ...); first keys: {sorted(checkpoint)[:5]}"
        )
    chosen = {}
    for short, candidates in found.items():
        if len(candidates) > 1:
            online = [c for c in candidates if "online_encoder" in c[0]]
            if not online:
                raise CheckpointError(f"{short} appears {len(candidates)} times ({[c[0] for c in candidates]}); "
                                      "cannot tell which encoder to convert")
            candidates = online
        chosen[short] = candidates[0][1]
    if len(chosen) < sum(len(c) for c in found.values()):
        logger.info("the checkpoint holds several encoders; converting the online encoder")
    return chosen


def convert_byol_a_checkpoint(
    checkpoint_path: str | Path, *, norm_stats: tuple[float, float] | str | None = None
) -> tuple[ByolAModel, ByolAFeatureExtractor]:
    """Original file -> (ByolAModel in eval mode, loaded strictly; its feature extractor).

    Args:
        norm_stats: (mean, std) of the log-mel over your dataset, or a preset name from BYOL_A_NORM_PRESETS;
            default: the original README's example for the version.
    """
    state_dict = encoder_state_dict(load_torch_checkpoint(checkpoint_path))
    blocks = 1 + max(int(key.split(".")[1]) for key in state_dict if key.startswith("features.")) // 4
    if blocks not in (2, 3):
        raise CheckpointError(f"{blocks} conv blocks found; BYOL-A v1 has 3 and v2 has 2")
    version = 1 if blocks == 3 else 2
    conv_width = state_dict["fc.0.weight"].shape[1]
    channels = state_dict["features.0.weight"].shape[0]
    mlp_hidden = state_dict["fc.0.weight"].shape[0]
    mlp_out = state_dict["fc.3.weight"].shape[0]
    config = ByolAConfig(
        version=version,
        num_conv_blocks=blocks,
        conv_channels=channels,
        n_mels=conv_width // channels * 2**blocks,
        mlp_hidden_size=mlp_hidden,
        hidden_size=mlp_out + (conv_width if version == 2 else 0),
    )
    rules = [(rf"features\.{4 * index}\.(weight|bias)", rf"conv_blocks.{index}.conv.\1") for index in range(blocks)]
    rules += [
        (rf"features\.{4 * index + 1}\.(weight|bias|running_mean|running_var|num_batches_tracked)",
         rf"conv_blocks.{index}.norm.\1")
        for index in range(blocks)
    ]
    rules += [(r"fc\.0\.(weight|bias)", r"fc1.\1"), (r"fc\.3\.(weight|bias)", r"fc2.\1")]
    model = ByolAModel(config)
    load_state_dict_strictly(model, rename_keys(state_dict, rules, source="BYOL-A checkpoint"), str(checkpoint_path))
    if isinstance(norm_stats, str):
        if norm_stats not in BYOL_A_NORM_PRESETS:
            raise ValueError(f"unknown norm_stats preset {norm_stats!r}; known: {sorted(BYOL_A_NORM_PRESETS)}")
        norm_stats = BYOL_A_NORM_PRESETS[norm_stats]
    overrides = {"mean": norm_stats[0], "std": norm_stats[1]} if norm_stats is not None else {}
    return model.eval(), ByolAFeatureExtractor.for_version(version, **overrides)


def convert_and_save(checkpoint_path: str | Path, output_dir: str | Path, *, push_to_hub: str | None = None,
                     **options) -> Path:
    """Convert, then write the folder (weights, configs, model card, remote code) and verify that it reloads."""
    from .output import convert_and_save_with

    return convert_and_save_with(convert_byol_a_checkpoint, checkpoint_path, output_dir, push_to_hub=push_to_hub, **options)
