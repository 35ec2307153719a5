"""audiozoo pretrain beats / beats_tokenizer: masking and the random-projection tokenizer, the student seeing only
kept patches at their places, learning on a fixed batch (both loops), exact kill-and-resume, accumulation with
bf16 autocast (iteration 2: a trained tokenizer folder as labeller), and saved folders that AutoModel loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel

from audiozoo.models.beats import (
    BeatsConfig,
    BeatsFeatureExtractor,
    BeatsModel,
    BeatsTokenizerConfig,
    BeatsTokenizerModel,
)
from audiozoo.training.pretrain_beats import (
    BeatsPretrainingModel,
    PretrainBeatsArgs,
    encode_kept_patches,
    kept_patch_count,
    random_patch_split,
    run_pretrain_beats,
)
from audiozoo.training.pretrain_beats_tokenizer import (
    TrainTokenizerArgs,
    ema_update_codebook_,
    run_train_tokenizer,
    spherical_kmeans,
)
from audiozoo.training.tokenizers_beats import (
    RANDOM_TOKENIZER_FILE,
    RandomProjectionTokenizer,
    load_frozen_tokenizer,
    patchify,
)

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "patch_embed_dim": 16, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}
CODEBOOK = {"codebook_size": 16, "codebook_dim": 8}
PATCHES = 96  # 2 s -> 198 frames -> 12 time steps x 8 bands


from conftest import sweep_clip, write_unlabelled_clips

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def root(tmp_path):
    """Clips (four in audio/, two in fixed/: one batch of 2), the tiny config, a teacher and a tokenizer folder."""
    write_unlabelled_clips(tmp_path)
    (tmp_path / "beats.json").write_text(json.dumps({"model_type": "audiozoo-beats", **TINY}))
    torch.manual_seed(0)
    BeatsModel(BeatsConfig(**TINY)).save_pretrained(tmp_path / "teacher")
    BeatsFeatureExtractor().save_pretrained(tmp_path / "teacher")
    BeatsTokenizerModel(BeatsTokenizerConfig(**TINY, **CODEBOOK)).save_pretrained(tmp_path / "tokenizer")
    BeatsFeatureExtractor().save_pretrained(tmp_path / "tokenizer")
    return tmp_path


def _mpp_args(root, out, **overrides) -> PretrainBeatsArgs:
    values = dict(data=str(root / "audio"), output_dir=str(out), config=str(root / "beats.json"), clip_seconds=2.0,
                  batch_size=2, lr=1e-3, epochs=100, predictor_layers=1, seed=0, cpu=True, **CODEBOOK)
    values.update(overrides)
    return PretrainBeatsArgs(**values)


def _tokenizer_args(root, out, **overrides) -> TrainTokenizerArgs:
    values = dict(data=str(root / "audio"), output_dir=str(out), teacher=str(root / "teacher"), clip_seconds=2.0,
                  batch_size=2, lr=1e-3, epochs=100, decoder_layers=1, seed=0, cpu=True, **CODEBOOK)
    values.update(overrides)
    return TrainTokenizerArgs(**values)


def test_masking_keeps_a_quarter_and_the_random_tokenizer_is_seeded(tmp_path):
    torch.manual_seed(0)
    keep, masked = random_patch_split(4, PATCHES, 0.75)
    assert keep.shape == (4, 24) and masked.shape == (4, 72)  # exactly 25 % kept in every clip
    for row in range(4):
        assert sorted(keep[row].tolist() + masked[row].tolist()) == list(range(PATCHES))
    assert not torch.equal(keep[0], keep[1])  # drawn per clip
    assert kept_patch_count(496, 0.75) == 124  # 10 s clips

    features = torch.randn(2, 198, 128)
    patches = patchify(features, 16)
    assert torch.equal(patches[1, 3 * 8 + 5], features[1, 48:64, 80:96].reshape(-1))  # time-major, p = t * 8 + f
    tokenizer = RandomProjectionTokenizer(16, 16, 8, seed=3)
    ids = tokenizer(features)
    assert ids.shape == (2, PATCHES) and ids.dtype == torch.long and len(ids.unique()) > 4
    assert torch.equal(RandomProjectionTokenizer(16, 16, 8, seed=3)(features), ids)  # same seed, same labels
    assert not torch.equal(RandomProjectionTokenizer(16, 16, 8, seed=4)(features), ids)
    tokenizer.save(tmp_path / RANDOM_TOKENIZER_FILE)
    loaded = load_frozen_tokenizer(str(tmp_path / RANDOM_TOKENIZER_FILE))
    assert loaded.is_random_projection and loaded.codebook_size == 16 and torch.equal(loaded(features), ids)


def test_the_student_sees_only_kept_patches_at_their_places():
    torch.manual_seed(0)
    encoder = BeatsModel(BeatsConfig(**TINY)).eval()
    features = torch.randn(2, 198, 128)
    keep, masked = random_patch_split(2, PATCHES, 0.75)
    kept = encode_kept_patches(encoder, features, keep)
    assert kept.shape == (2, 24, 32)
    # equal to the full encoder with the masked patches as padding (their original positions, nothing leaks)
    tokens = encoder.patch_embedding(features)
    valid = torch.zeros(2, PATCHES, dtype=torch.bool).scatter(1, keep, True)
    full, _, _ = encoder.encoder(tokens, valid)
    torch.testing.assert_close(kept, full.gather(1, keep[..., None].expand(-1, -1, 32)), atol=1e-5, rtol=1e-5)
    everything = torch.arange(PATCHES).expand(2, -1)
    torch.testing.assert_close(encode_kept_patches(encoder, features, everything),
                               encoder(features).last_hidden_state, atol=1e-5, rtol=1e-5)
    time_step, band = divmod(int(masked[0, 0]), 8)
    changed = features.clone()
    changed[0, time_step * 16 : (time_step + 1) * 16, band * 16 : (band + 1) * 16] += 5.0
    assert torch.equal(encode_kept_patches(encoder, changed, keep)[0], kept[0])
    logits = BeatsPretrainingModel(encoder, 16, predictor_layers=1).eval()(features, keep, masked)
    assert logits.shape == (2, 72, 16)


def test_codebook_moves_by_normalised_ema_and_starts_from_kmeans():
    torch.manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(200, 8), dim=-1)
    centres, counts = spherical_kmeans(vectors, 16, 10)
    assert torch.allclose(centres.norm(dim=-1), torch.ones(16)) and counts.sum() == 200
    quantizer = BeatsTokenizerModel(BeatsTokenizerConfig(**TINY, **CODEBOOK)).quantizer
    before = quantizer.codebook.clone()
    ids = torch.zeros(200, dtype=torch.long)  # everything on entry 0
    ema_update_codebook_(quantizer, vectors, ids, decay=0.9)
    expected = torch.nn.functional.normalize(0.9 * before[0] + 0.1 * torch.nn.functional.normalize(
        vectors.sum(0), dim=0), dim=0)
    torch.testing.assert_close(quantizer.codebook[0], expected)
    torch.testing.assert_close(quantizer.codebook[1:], before[1:])  # unused entries stay (renormalised)
    assert quantizer.usage_count[0] == pytest.approx(20.0) and quantizer.usage_count[1:].sum() == 0


def test_both_losses_go_down_on_a_fixed_batch(root, tmp_path):
    fixed = {"data": str(root / "fixed"), "max_steps": 20, "lr": 3e-3, "checkpoint_every": 100}  # one batch = one epoch
    mpp = run_pretrain_beats(_mpp_args(root, tmp_path / "mpp", **fixed))
    losses = [loss for _, loss in mpp.losses]
    assert len(losses) == 20 and np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4])
    tok = run_train_tokenizer(_tokenizer_args(root, tmp_path / "tok", **fixed))
    losses = [loss for _, loss in tok.losses]
    assert len(losses) == 20 and np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    # the saved tokenizer loads with AutoModel, its codebook stays on the unit sphere and labels the next iteration
    tokenizer = AutoModel.from_pretrained(tmp_path / "tok")
    assert isinstance(tokenizer, BeatsTokenizerModel) and tokenizer.config.codebook_size == 16
    assert torch.allclose(tokenizer.quantizer.codebook.norm(dim=-1), torch.ones(16), atol=1e-5)
    assert tok.codes_used > 1
    features = AutoFeatureExtractor.from_pretrained(tmp_path / "tok")([sweep_clip(440.0, 2.0, 9)], sampling_rate=16000,
                                                                      return_tensors="pt")["input_values"]
    assert load_frozen_tokenizer(str(tmp_path / "tok"))(features).shape == (1, PATCHES)


def test_kill_and_resume_continues_exactly(root, tmp_path):
    settings = {"max_steps": 5, "checkpoint_every": 1}
    full = run_pretrain_beats(_mpp_args(root, tmp_path / "full", **settings))
    first = run_pretrain_beats(_mpp_args(root, tmp_path / "killed", stop_after_steps=3, **settings))
    assert [step for step, _ in first.losses] == [1, 2, 3]
    resumed = run_pretrain_beats(_mpp_args(root, tmp_path / "killed", resume="latest", **settings))
    assert resumed.losses[:3] == first.losses  # restored from the checkpoint
    assert resumed.losses[3:] == full.losses[3:] and len(full.losses) == 5  # steps 4-5 as the uninterrupted run
    for out in ("full", "killed"):
        model = AutoModel.from_pretrained(tmp_path / out)
        assert isinstance(model, BeatsModel) and model.config.hidden_size == 32
        assert (tmp_path / out / RANDOM_TOKENIZER_FILE).is_file()
    reference, resumed_model = (AutoModel.from_pretrained(tmp_path / out).state_dict() for out in ("full", "killed"))
    assert all(torch.equal(reference[name], resumed_model[name]) for name in reference)


def test_accumulation_with_bf16_and_saved_folders_load(root, tmp_path):
    out = tmp_path / "iter2"
    result = run_pretrain_beats(_mpp_args(root, out, tokenizer=str(root / "tokenizer"), epochs=2,
                                          gradient_accumulation_steps=2, mixed_precision="bf16"))
    assert [step for step, _ in result.losses] == [1, 2]  # 2 batches of 2 clips per epoch -> one step per epoch
    assert all(np.isfinite(loss) for _, loss in result.losses)
    assert not (out / RANDOM_TOKENIZER_FILE).exists()  # labels came from the tokenizer folder
    model = AutoModel.from_pretrained(out)
    features = AutoFeatureExtractor.from_pretrained(out)([sweep_clip(440.0, 2.0, 9)], sampling_rate=16000,
                                                         return_tensors="pt")["input_values"]
    encoded = model(input_values=features).last_hidden_state
    assert encoded.shape == (1, PATCHES, 32) and torch.isfinite(encoded).all()

    tok = run_train_tokenizer(_tokenizer_args(root, tmp_path / "tok", epochs=2, gradient_accumulation_steps=2,
                                              mixed_precision="bf16"))
    assert [step for step, _ in tok.losses] == [1, 2] and all(np.isfinite(loss) for _, loss in tok.losses)
    assert isinstance(AutoModel.from_pretrained(tmp_path / "tok"), BeatsTokenizerModel)
