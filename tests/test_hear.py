"""The HEAR 2021 API (audiozoo.hear) on every family, with the tiny parity models converted by `converted_dir`.

Each rule of the API (hearbenchmark.com/hear-api.html, the HEAR 2021 rules, hear-validator's checks) is a test:
attributes known as ints before any audio, output shapes and dtypes, sizes equal to the attributes, timestamps in ms
at the centres of regular steps, audio of any length, embeddings independent of the rest of the batch, outputs on
the model's device, and clear errors for input outside the contract.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel

from audiozoo import hear
from audiozoo.families import FAMILIES

# parity case -> what kind of folder it converts to
CASES = {
    "beats_tiny_ssl": "encoder",
    "beats_tiny_finetuned": "clip classifier",
    "beats_tokenizer_tiny": "tokenizer",
    "sed_beats_tiny": "frame classifier",
    "ast_tiny_f10": "clip classifier",
    "eat_tiny_pretrained": "encoder",
    "eat_tiny_finetuned": "clip classifier",
    "byola_v1_d512": "encoder",
    "byola_v2_d3072": "encoder",
    "sed_atstf_tiny": "frame classifier",
    "sed_fpasst_tiny": "frame classifier",
    "sed_asit_tiny": "frame classifier",
    "sed_m2d_tiny": "frame classifier",
    "sed_frame_mn06": "frame classifier",
}
RATE = 16000
# under BEATs' minimum input and under one 160 ms step; short; one window; several windows of every windowed family
LENGTHS_SECONDS = (0.1, 1.0, 10.0, 25.0)

_models: dict[str, hear.HearModel] = {}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def model(request, converted_dir) -> hear.HearModel:
    name = request.param
    if name not in _models:
        _models[name] = hear.load_model(converted_dir(name))
    return _models[name]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny models run fastest on one thread of a busy machine."""


def noise(sounds: int, seconds: float, seed: int, scale: float = 0.5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(sounds, round(seconds * RATE), generator=generator) * 2 - 1) * scale


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal to 1e-5 relative to the tensor's largest value (float32 rounding grows with it: frame-MobileNet's
    features reach ~130 next to zero padding, where float32 itself is 3e-4 away from float64, batched or not)."""
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * max(1.0, expected.abs().max().item()))


def direct_frames(model: hear.HearModel, window: torch.Tensor) -> tuple[torch.Tensor, object]:
    """The encoder's per-step features of one window, run by hand: front end, encoder, frequency averaging."""
    inputs = model.feature_extractor(window, sampling_rate=RATE)
    with torch.no_grad():
        output = model.encoder(**inputs)
    if model.model_type == "audiozoo-asit":
        tokens = output.last_hidden_state[:, 1:]
        config = model.encoder.config
        return tokens.reshape(1, -1, config.num_mel_bins // config.patch_size, tokens.shape[-1]).mean(2)[0], output
    if hasattr(model.encoder, "frame_features"):
        return model.encoder.frame_features(output)[0][0], output
    return output.last_hidden_state[0], output


def test_every_family_is_covered(converted_dir):
    covered = {json.loads((converted_dir(name) / "config.json").read_text())["model_type"] for name in CASES}
    assert covered == {family.model_type for family in FAMILIES}


def test_attributes_are_ints_known_before_any_audio(model):
    assert isinstance(model, torch.nn.Module)
    for name in ("sample_rate", "scene_embedding_size", "timestamp_embedding_size"):
        assert type(getattr(model, name)) is int, name
    assert model.sample_rate == RATE
    expected = model.encoder.config.hidden_size
    if model.model_type in ("audiozoo-m2d", "audiozoo-frame-mn"):
        expected = model.encoder.output_size  # M2D: 5 frequency tokens stacked; frame-MobileNet: its channels
    assert model.timestamp_embedding_size == model.scene_embedding_size == expected
    assert not model.encoder.training


def test_embeddings_and_timestamps_follow_the_api_at_every_length(model):
    hop = model.timestamp_hop_ms
    steps = []
    for seconds in LENGTHS_SECONDS:
        audio = noise(2, seconds, seed=int(seconds * 10))
        embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
        scene = hear.get_scene_embeddings(audio, model)
        count = embeddings.shape[1]
        steps.append(count)
        # shapes, sizes, dtype, device
        assert embeddings.shape == (2, count, model.timestamp_embedding_size)
        assert timestamps.shape == (2, count) and count >= 1
        assert scene.shape == (2, model.scene_embedding_size)
        for tensor in (embeddings, timestamps, scene):
            assert tensor.dtype == torch.float32 and tensor.device == model.device
        assert torch.isfinite(embeddings).all() and torch.isfinite(scene).all()
        assert not torch.allclose(embeddings[0], embeddings[1])  # each sound its own
        # timestamps in ms at step centres: (t + 0.5) * hop, the same for every sound
        expected = (torch.arange(count, dtype=torch.float64) + 0.5) * hop
        torch.testing.assert_close(timestamps[0].double(), expected, rtol=0, atol=1e-3)
        assert torch.equal(timestamps[0], timestamps[1])
        assert timestamps[0, 0].item() == pytest.approx(hop / 2)
        duration_ms = 1000 * audio.shape[1] / RATE
        if count > 1:  # hear-validator: regular within 1 ms, last not after the end nor two hops before it
            assert (timestamps.diff(dim=1) - hop).abs().max() < 1e-3
            assert timestamps.max() <= duration_ms
            assert timestamps.max() >= duration_ms - 2 * hop
        if model.windowing.padding != "none":  # completed windows reach every step centred within the audio
            assert timestamps.max() > duration_ms - hop
        # the scene embedding is the family's documented pooling of these frames
        if model.windowing.scene_pooling == "mean":
            assert_close_to_scale(scene, embeddings.mean(dim=1))
        elif model.windowing.scene_pooling == "mean+max":
            assert_close_to_scale(scene, embeddings.mean(dim=1) + embeddings.amax(dim=1))
    assert steps == sorted(steps) and steps[-1] > steps[1] > 0  # T grows with the length of the audio


def test_frames_are_the_encoders_own_and_windows_continue_the_grid(model):
    """Timestamp embeddings equal the encoder's per-step features run by hand on each window of the sound."""
    plan = model.windowing
    if plan.steps_per_window is None:  # BYOL-A: the whole sound
        audio = noise(1, 3.0, seed=7)
        embeddings, _ = hear.get_timestamp_embeddings(audio, model)
        frames, output = direct_frames(model, audio[0])
        assert_close_to_scale(embeddings[0], frames[: embeddings.shape[1]])
        if embeddings.shape[1] == frames.shape[0]:  # nothing dropped: the scene is the original embedding
            assert_close_to_scale(hear.get_scene_embeddings(audio, model)[0], output.pooler_output[0])
        return
    hop, window, per_window = plan.hop_samples, plan.window_samples, plan.steps_per_window
    audio = noise(1, (hop + window // 2) / RATE, seed=11)  # one full window and part of a second
    embeddings, _ = hear.get_timestamp_embeddings(audio, model)
    first, first_output = direct_frames(model, audio[0, :window])
    assert_close_to_scale(embeddings[0, :per_window], first[:per_window])
    second_audio = audio[0, hop : hop + window]
    if plan.padding == "waveform":  # else the window goes as it is (AST / EAT: their front end pads the filterbank)
        second_audio = torch.nn.functional.pad(second_audio, (0, window - second_audio.numel()))
    second, second_output = direct_frames(model, second_audio)
    rest = embeddings.shape[1] - per_window
    assert 0 < rest <= per_window
    assert_close_to_scale(embeddings[0, per_window:], second[:rest])
    if plan.scene_pooling == "pooled":  # AST / EAT: each window's pooled token, weighted by the steps it keeps
        pooled = first_output.pooler_output[0] * per_window + second_output.pooler_output[0] * rest
        expected = pooled / (per_window + rest)
        assert_close_to_scale(hear.get_scene_embeddings(audio, model)[0], expected)


def test_a_sound_does_not_depend_on_the_rest_of_its_batch(model):
    seconds = 11.0  # several windows for every windowed family
    sound = noise(1, seconds, seed=3)
    alone_frames, alone_times = hear.get_timestamp_embeddings(sound, model)
    alone_scene = hear.get_scene_embeddings(sound, model)
    loud = noise(1, seconds, seed=4, scale=1.0)
    # a short sound zero-padded by the caller (HEAR batches hold one length), and silence
    short = torch.nn.functional.pad(noise(1, 0.7, seed=5), (0, sound.shape[1] - round(0.7 * RATE)))
    batch = torch.cat([loud, sound, short, torch.zeros_like(sound)])
    frames, times = hear.get_timestamp_embeddings(batch, model)
    scene = hear.get_scene_embeddings(batch, model)
    assert_close_to_scale(frames[1], alone_frames[0])
    assert_close_to_scale(scene[1], alone_scene[0])
    assert torch.equal(times[1], alone_times[0])


def test_one_window_per_pass_makes_a_sound_bitwise_independent_of_its_batch(converted_dir):
    """With window_batch_size=1 every window runs alone: the same computation whatever the batch holds."""
    model = hear.load_model(converted_dir("sed_frame_mn06"), window_batch_size=1)
    sound = noise(1, 11.0, seed=3)
    batch = torch.cat([noise(1, 11.0, seed=4, scale=1.0), sound])
    in_batch, alone = hear.get_timestamp_embeddings(batch, model)[0], hear.get_timestamp_embeddings(sound, model)[0]
    assert torch.equal(in_batch[1], alone[0])
    assert torch.equal(hear.get_scene_embeddings(batch, model)[1], hear.get_scene_embeddings(sound, model)[0])


@pytest.fixture(scope="module")
def small_model(converted_dir) -> hear.HearModel:
    return hear.load_model(converted_dir("ast_tiny_f10"))


def test_window_batches_do_not_change_the_embeddings(small_model, one_thread):
    audio = noise(2, 3.0, seed=9)  # four windows of the tiny AST per sound
    frames, _ = hear.get_timestamp_embeddings(audio, small_model)
    scene = hear.get_scene_embeddings(audio, small_model)
    one_by_one = hear.HearModel(small_model.feature_extractor, small_model.encoder, window_batch_size=1)
    torch.testing.assert_close(hear.get_timestamp_embeddings(audio, one_by_one)[0], frames, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hear.get_scene_embeddings(audio, one_by_one), scene, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("audio", "error", "message"),
    [
        (torch.zeros(RATE), ValueError, r"2-D \[n_sounds, n_samples\].*audio\[None\]"),
        (torch.zeros(1, 2, RATE), ValueError, r"2-D \[n_sounds, n_samples\]"),
        (torch.zeros(1, RATE, dtype=torch.int16), TypeError, r"floating point.*32768"),
        (torch.zeros(1, RATE, dtype=torch.bool), TypeError, "floating point"),
        (torch.zeros(1, RATE).numpy(), TypeError, r"torch\.Tensor.*from_numpy"),
        (torch.zeros(0, RATE), ValueError, "no sounds"),
        (torch.zeros(2, 0), ValueError, "0 samples"),
        (torch.tensor([[0.0] * 100, [float("nan")] * 100]), ValueError, r"sound\(s\) \[1\] hold NaN or Inf"),
        (torch.tensor([[float("inf")] * 100]), ValueError, r"sound\(s\) \[0\] hold NaN or Inf"),
    ],
    ids=["1-d", "3-d", "int16", "bool", "numpy", "no-sounds", "no-samples", "nan", "inf"],
)
def test_input_outside_the_contract_is_refused_clearly(small_model, audio, error, message):
    with pytest.raises(error, match=message):
        hear.get_timestamp_embeddings(audio, small_model)
    with pytest.raises(error, match=message):
        hear.get_scene_embeddings(audio, small_model)


def test_other_float_dtypes_are_read_as_float32(small_model):
    audio = noise(1, 1.0, seed=1)
    frames, _ = hear.get_timestamp_embeddings(audio, small_model)
    frames64, _ = hear.get_timestamp_embeddings(audio.double(), small_model)
    assert frames64.dtype == torch.float32
    torch.testing.assert_close(frames64, frames)


def test_the_model_must_come_from_load_model(small_model):
    with pytest.raises(TypeError, match="load_model"):
        hear.get_scene_embeddings(noise(1, 1.0, seed=1), small_model.encoder)


def test_the_default_model_loads_without_a_path():
    model = hear.load_model()
    assert model.model_type == "audiozoo-byol-a" and model.sample_rate == RATE
    embeddings, timestamps = hear.get_timestamp_embeddings(noise(1, 0.5, seed=2), model)
    assert embeddings.shape[2] == model.timestamp_embedding_size and timestamps.shape == embeddings.shape[:2]


def test_a_classifier_folder_gives_its_encoder(converted_dir):
    from transformers import AutoModelForAudioClassification

    folder = converted_dir("beats_tiny_finetuned")
    model = hear.load_model(folder, device="cpu", window_batch_size=2)
    classifier = AutoModelForAudioClassification.from_pretrained(folder, dtype=torch.float32)
    encoder_weights = getattr(classifier, classifier.base_model_prefix).state_dict()
    assert model.encoder.state_dict().keys() == encoder_weights.keys()
    assert all(torch.equal(value, encoder_weights[key]) for key, value in model.encoder.state_dict().items())
    assert model.window_batch_size == 2 and model.device == torch.device("cpu")


def test_a_folder_of_another_package_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="not an audiozoo model type"):
        hear.load_model(tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_outputs_follow_the_model_to_the_gpu(converted_dir):
    folder = converted_dir("sed_atstf_tiny")
    cpu_model = hear.load_model(folder)
    gpu_model = hear.load_model(folder).to("cuda")  # as the HEAR tools move it
    audio = noise(2, 12.0, seed=6)
    frames, timestamps = hear.get_timestamp_embeddings(audio.cuda(), gpu_model)
    scene = hear.get_scene_embeddings(audio, gpu_model)  # audio on the CPU is moved to the model
    for tensor in (frames, timestamps, scene):
        assert tensor.device.type == "cuda" and tensor.dtype == torch.float32
    torch.testing.assert_close(frames.cpu(), hear.get_timestamp_embeddings(audio, cpu_model)[0], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(scene.cpu(), hear.get_scene_embeddings(audio, cpu_model), rtol=1e-3, atol=1e-3)


def test_the_encoder_is_the_folders_automodel(converted_dir):
    """load_model uses the same front end and AutoModel the rest of the package loads."""
    folder = converted_dir("byola_v1_d512")
    model = hear.load_model(folder)
    assert type(model.encoder) is type(AutoModel.from_pretrained(folder))
    assert type(model.feature_extractor) is type(AutoFeatureExtractor.from_pretrained(folder))
