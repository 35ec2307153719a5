"""audiozoo pretrain byol_a: the augmentations, learning on a fixed batch, exact kill-and-resume, accumulation and
mixed precision, and a saved encoder that the Auto classes load."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import soundfile
import torch
from transformers import AutoFeatureExtractor, AutoModel

from audiozoo.models.byol_a import ByolAModel
from audiozoo.training.byol_a_augment import (
    ByolAAugmentation,
    MixupInLogMel,
    RandomLinearFader,
    RandomResizeCrop,
    normalize_batch,
)
from audiozoo.training.common import latest_checkpoint
from audiozoo.training.pretrain_byol_a import (
    PretrainByolAArgs,
    add_arguments,
    main,
    run_pretrain_byol_a,
    symmetric_byol_loss,
)

TINY = {"model_type": "audiozoo-byol-a", "version": 1, "hidden_size": 64, "mlp_hidden_size": 64, "conv_channels": 8}


pytestmark = pytest.mark.usefixtures("one_thread")


def _hit(frequency: float, seconds: float, seed: int) -> np.ndarray:
    """A decaying tone with a little noise: a drum-like one-shot."""
    rng = np.random.default_rng(seed)
    time = np.arange(round(seconds * 16000)) / 16000
    tone = 0.5 * np.sin(2 * np.pi * frequency * time) * np.exp(-4 * time)
    return (tone + 0.02 * rng.standard_normal(time.size)).astype(np.float32)


def _write_clips(folder, seconds: float) -> None:
    folder.mkdir()
    for index in range(8):
        soundfile.write(folder / f"hit_{index}.wav", _hit(150.0 * (index + 1), seconds, index), 16000)


@pytest.fixture
def clips(tmp_path):
    """Eight unlabelled 1.3 s clips in a flat folder (random 0.95 s crops), eight 0.95 s ones (no crop choice),
    and a tiny encoder config."""
    _write_clips(tmp_path / "long", 1.3)
    _write_clips(tmp_path / "exact", 0.95)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    return tmp_path


def _args(folder, out, data: str = "long", **overrides) -> PretrainByolAArgs:
    values = {"data": str(folder / data), "output_dir": str(out), "config": str(folder / "tiny.json"),
              "batch_size": 4, "lr": 1e-3, "projection_hidden_size": 32, "projection_size": 16, "memory_size": 64,
              "seed": 0, "cpu": True}
    values.update(overrides)
    return PretrainByolAArgs(**values)


def _log_mel_batch(batch: int = 3, frames: int = 96) -> torch.Tensor:
    return torch.randn(batch, 1, 64, frames, generator=torch.Generator().manual_seed(0))


def test_each_augmentation_changes_the_input_and_keeps_its_shape():
    torch.manual_seed(0)
    x = _log_mel_batch()
    mixup = MixupInLogMel(ratio=0.4, memory_size=4)
    assert torch.equal(mixup(x), x)  # nothing in memory yet: the first batch passes unmixed
    mixed = mixup(x + 1.0)
    assert mixed.shape == x.shape and not torch.allclose(mixed, x + 1.0)
    assert mixup.bank.shape == (4, 1, 64, 96)  # FIFO of the newest examples
    restored = MixupInLogMel(memory_size=4)
    restored.load_state_dict(mixup.state_dict())
    assert torch.equal(restored.bank, mixup.bank)  # the bank travels with checkpoints
    for augmentation in (RandomResizeCrop(), RandomLinearFader()):
        changed = augmentation(x)
        assert changed.shape == x.shape and not torch.allclose(changed, x)
    view_one, view_two = ByolAAugmentation(version=2, memory_size=8)(x)
    assert view_one.shape == view_two.shape == x.shape and not torch.allclose(view_one, view_two)
    both = torch.cat([view_one, view_two])
    assert abs(float(both.mean())) < 1e-5 and abs(float(both.std()) - 1.0) < 1e-5  # post-normalised together
    assert torch.allclose(normalize_batch(x * 3 + 2), normalize_batch(x), atol=1e-5)


def test_symmetric_loss_is_zero_for_aligned_and_four_for_orthogonal_vectors():
    aligned = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert float(symmetric_byol_loss((aligned, aligned), (aligned * 3, aligned))) == pytest.approx(0.0)
    orthogonal = aligned.flip(1)
    assert float(symmetric_byol_loss((aligned, aligned), (orthogonal, orthogonal))) == pytest.approx(4.0)


def test_loss_goes_down_on_a_fixed_batch(clips, tmp_path):
    # eight clips of exactly one window and batch 8: every step sees the same batch (augmented afresh)
    result = run_pretrain_byol_a(_args(clips, tmp_path / "fixed", data="exact", batch_size=8, max_steps=20,
                                       checkpoint_every=100))
    losses = [loss for _, loss in result.losses]
    assert [step for step, _ in result.losses] == list(range(1, 21))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_kill_and_resume_continues_exactly(clips, tmp_path):
    # two batches per epoch: the kill at step 3 lands mid-epoch, after the mixup bank has filled
    common = {"max_steps": 5, "checkpoint_every": 1, "version": 2}
    full = run_pretrain_byol_a(_args(clips, tmp_path / "full", **common))
    first = run_pretrain_byol_a(_args(clips, tmp_path / "killed", stop_after_steps=3, **common))
    assert first.losses == full.losses[:3]
    resumed = run_pretrain_byol_a(_args(clips, tmp_path / "killed", resume="latest", **common))
    assert [step for step, _ in resumed.losses] == [1, 2, 3, 4, 5]
    assert resumed.losses[3:] == full.losses[3:]  # bit-identical losses at steps 4 and 5
    for name, tensor in AutoModel.from_pretrained(tmp_path / "full").state_dict().items():
        assert torch.equal(tensor, AutoModel.from_pretrained(tmp_path / "killed").state_dict()[name]), name


def test_accumulation_counts_optimiser_steps_and_bf16_runs(clips, tmp_path):
    # 8 clips / batch 2 = 4 batches; accumulating 3: a step after batch 3 and one at the end of the loader
    result = run_pretrain_byol_a(_args(clips, tmp_path / "acc", batch_size=2, gradient_accumulation_steps=3,
                                       epochs=1))
    assert [step for step, _ in result.losses] == [1, 2]
    target_state = torch.load(latest_checkpoint(tmp_path / "acc") / "custom_checkpoint_1.pkl", weights_only=False)
    assert int(target_state["updates"]) == 2  # the EMA moved once per optimiser step
    result = run_pretrain_byol_a(_args(clips, tmp_path / "bf16", max_steps=2, mixed_precision="bf16"))
    assert len(result.losses) == 2 and all(np.isfinite(loss) for _, loss in result.losses)


def test_the_saved_encoder_loads_with_the_auto_classes(clips, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "encoder"
    flags = parser.parse_args(["--data", str(clips / "long"), "--output_dir", str(out), "--config",
                               str(clips / "tiny.json"), "--max_steps", "2", "--batch_size", "4",
                               "--projection_hidden_size", "32", "--projection_size", "16", "--cpu"])
    assert main(flags) == 0 and "2 steps on 8 clips" in capsys.readouterr().out
    model = AutoModel.from_pretrained(out)
    feature_extractor = AutoFeatureExtractor.from_pretrained(out)
    assert isinstance(model, ByolAModel) and model.config.hidden_size == 64
    stats = json.loads((out / "pretrain_results.json").read_text())["norm_stats"]
    assert (feature_extractor.mean, feature_extractor.std) == pytest.approx(tuple(stats))
    assert stats[1] > 0 and stats[0] != pytest.approx(-5.4919195)  # computed on the clips, not the README preset
    inputs = feature_extractor(_hit(300.0, 1.5, 0), sampling_rate=16000)
    with torch.no_grad():
        assert model.eval()(**inputs).pooler_output.shape == (1, 64)
