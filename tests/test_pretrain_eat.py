"""audiozoo pretrain eat: inverse block masking, learning on a fixed batch, exact kill-and-resume (EMA teacher
included), accumulation with bf16 autocast, and a saved encoder that AutoModel loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel

from audiozoo.models.eat import EatConfig, EatModel
from audiozoo.training.masking_eat import (
    grow_blocks,
    inverse_block_mask,
    kept_indices,
    kept_patch_count,
    multi_mask,
)
from audiozoo.training.pretrain_eat import (
    EatPretrainingModel,
    PretrainEatArgs,
    eat_losses,
    ema_decay,
    run_pretrain_eat,
    teacher_targets,
)

TINY_EAT = {"model_type": "audiozoo-eat", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 64, "max_length": 208, "num_positions": 104}
GRID = (13, 8)  # 208 frames / 16 time patches x 128 mel bins / 16


from conftest import sweep_clip, write_unlabelled_clips

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def clips(tmp_path):
    """2 s, 16 kHz mono clips in folders (no labels: four in audio/, two in fixed/) and the tiny config."""
    write_unlabelled_clips(tmp_path)
    (tmp_path / "eat.json").write_text(json.dumps(TINY_EAT))
    return tmp_path


def _args(root, out, **overrides) -> PretrainEatArgs:
    values = {"data": str(root / "audio"), "output_dir": str(out), "config": str(root / "eat.json"),
              "clip_seconds": 2.0, "batch_size": 2, "clone_batch": 2, "lr": 1e-3, "epochs": 100, "decoder_layers": 2,
              "seed": 0, "cpu": True}
    values.update(overrides)
    return PretrainEatArgs(**values)


def _neighbour_share(kept: torch.Tensor, grid: tuple[int, int]) -> float:
    """Share of kept patches with a kept patch above, below, left or right."""
    cells = kept.view(-1, 1, *grid).float()
    cross = torch.tensor([[[[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]])
    neighbours = torch.nn.functional.conv2d(cells, cross, padding=1)
    return float(((neighbours > 0) & (cells > 0)).sum() / cells.sum())


def test_masks_keep_an_exact_count_in_blocks_and_differ_between_clones():
    torch.manual_seed(0)
    mask = multi_mask(4, 3, (64, 8))  # the original's 10 s grid
    assert mask.shape == (12, 512) and mask.dtype == torch.bool
    assert ((~mask).sum(dim=1) == kept_patch_count(512, 0.8)).all()  # int(512 * 0.2) = 102 in every row
    assert kept_indices(mask).shape == (12, 102)
    assert all(not torch.equal(mask[row], mask[row + 1]) for row in range(0, 12, 3))  # clones of a clip differ
    # blocks: one centre grows to a contiguous 5 x 5 square, cut at the grid edges
    centres = torch.zeros(2, *GRID)
    centres[0, 6, 3] = 1
    centres[1, 0, 7] = 1
    blocks = grow_blocks(centres, 5)
    assert blocks[0].sum() == 25 and blocks[0, 4:9, 1:6].all()
    assert blocks[1].sum() == 9 and blocks[1, 0:3, 5:8].all()
    # kept patches cluster (almost all have a kept neighbour), unlike uniformly drawn ones (about 0.56)
    assert _neighbour_share(~inverse_block_mask(64, (64, 8)), (64, 8)) > 0.85
    assert ((~inverse_block_mask(8, GRID)).sum(dim=1) == kept_patch_count(104, 0.8)).all()


def _changed_patch(features: torch.Tensor, patch: int) -> torch.Tensor:
    """A copy of `features` with the 16 x 16 frames of time-major patch `patch` of clip 0 raised by 5."""
    time_patch, frequency_patch = divmod(patch, 8)
    changed = features.clone()
    changed[0, time_patch * 16 : (time_patch + 1) * 16, frequency_patch * 16 : (frequency_patch + 1) * 16] += 5.0
    return changed


def test_student_sees_only_kept_patches_and_losses_follow_the_original():
    torch.manual_seed(0)
    encoder = EatModel(EatConfig(**{k: v for k, v in TINY_EAT.items() if k != "model_type"}))
    model = EatPretrainingModel(encoder, decoder_layers=2).eval()
    features = torch.randn(2, 208, 128)
    mask = multi_mask(2, 3, GRID)
    output = model(features, mask, clone_batch=3)
    assert output.cls_token.shape == (6, 32) and output.predictions.shape == (6, 104, 32)
    targets = teacher_targets(encoder, features, top_k=2)
    assert targets.shape == (2, 104, 32)
    assert torch.allclose(targets.mean(-1), torch.zeros(2, 104), atol=1e-5)  # LayerNorm over channels, no affine
    frame, utterance = eat_losses(output, targets, mask, clone_batch=3)
    assert frame > 0 and utterance > 0
    # the student sees only the kept patches of each clone; the teacher sees everything
    masked, kept = _changed_patch(features, int(mask[0].nonzero()[0])), _changed_patch(features, int((~mask[0]).nonzero()[0]))
    assert torch.allclose(model(masked, mask, clone_batch=3).cls_token[0], output.cls_token[0], atol=1e-6)
    assert not torch.allclose(model(kept, mask, clone_batch=3).cls_token[0], output.cls_token[0], atol=1e-4)
    assert not torch.allclose(teacher_targets(encoder, masked, top_k=2)[0], targets[0])
    assert ema_decay(0, 0.9998, 0.99999, 100) == 0.9998 and ema_decay(100, 0.9998, 0.99999, 100) == 0.99999


def test_loss_goes_down_on_a_fixed_batch(clips, tmp_path):
    result = run_pretrain_eat(_args(clips, tmp_path / "run", data=str(clips / "fixed"), max_steps=20, lr=1e-2,
                                    checkpoint_every=1000))
    losses = [loss for _, loss in result.losses]
    assert len(losses) == 20
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4])


def _teacher_state(output_dir) -> dict[str, torch.Tensor]:
    """The EMA teacher saved in the newest checkpoint (registered second, after the training state)."""
    from audiozoo.training.common import latest_checkpoint

    return torch.load(latest_checkpoint(output_dir) / "custom_checkpoint_1.pkl", weights_only=False)


def test_kill_and_resume_continues_exactly(clips, tmp_path):
    # a fast-moving teacher, so that the losses after the restart depend on the restored EMA weights
    settings = {"max_steps": 5, "checkpoint_every": 1, "ema_start": 0.9, "ema_end": 0.99, "ema_anneal_steps": 10}
    full = run_pretrain_eat(_args(clips, tmp_path / "full", **settings))
    first = run_pretrain_eat(_args(clips, tmp_path / "killed", stop_after_steps=3, **settings))
    assert [step for step, _ in first.losses] == [1, 2, 3]
    resumed = run_pretrain_eat(_args(clips, tmp_path / "killed", resume="latest", **settings))
    assert resumed.losses[:3] == first.losses  # restored from the checkpoint
    assert resumed.losses[3:] == full.losses[3:] and len(full.losses) == 5  # steps 4-5 as the uninterrupted run
    teacher, reference = _teacher_state(tmp_path / "killed"), _teacher_state(tmp_path / "full")
    assert teacher.keys() == reference.keys()
    assert all(torch.equal(teacher[name], reference[name]) for name in teacher)
    student = AutoModel.from_pretrained(tmp_path / "full").state_dict()
    layer = "layers.0.mlp.fc1.weight"
    assert not torch.equal(teacher[layer], student[layer])  # an average, not a copy of the student


def test_accumulation_with_bf16_and_the_saved_encoder_loads(clips, tmp_path):
    out = tmp_path / "acc"
    result = run_pretrain_eat(_args(clips, out, epochs=2, gradient_accumulation_steps=2, mixed_precision="bf16"))
    assert [step for step, _ in result.losses] == [1, 2]  # 2 batches of 2 clips per epoch -> one step per epoch
    assert all(np.isfinite(loss) for _, loss in result.losses)
    model = AutoModel.from_pretrained(out)
    assert isinstance(model, EatModel) and model.config.max_length == 208
    extractor = AutoFeatureExtractor.from_pretrained(out)
    features = extractor([sweep_clip(440.0, 2.0, 9)], sampling_rate=16000, return_tensors="pt")["input_values"]
    encoded = model(input_values=features)
    assert encoded.last_hidden_state.shape == (1, 1 + 104, 32) and torch.isfinite(encoded.last_hidden_state).all()


def test_command_line_flags_reach_the_run(clips, tmp_path, capsys):
    import argparse

    from audiozoo.training.pretrain_eat import add_arguments, main

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--data", str(clips / "fixed"), "--config", str(clips / "eat.json"), "--output_dir",
                              str(tmp_path / "cli"), "--clip_seconds", "2", "--batch_size", "2", "--clone_batch", "2",
                              "--decoder_layers", "1", "--max_steps", "1", "--cpu"])
    assert args.mask_ratio == 0.8 and args.ema_end == 0.99999 and args.average_top_k_layers is None
    assert main(args) == 0
    assert "1 steps" in capsys.readouterr().out
    assert (tmp_path / "cli" / "config.json").is_file() and (tmp_path / "cli" / "preprocessor_config.json").is_file()
