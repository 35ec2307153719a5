"""The batch policy (issue 15): the batch size the pipelines, the dataset runner and the command line use when none
is given follows `audiozoo.runtime`'s table per family and device, and a clip's output does not depend on the batch
it runs in (alone, or among other clips of the same or other lengths), for convolutional and transformer families.
Also: BYOL-A's inference-time pooling on the CPU gives the values of the original's MaxPool2d."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForAudioFrameClassification,
)

from audiozoo import runtime
from audiozoo.families import FAMILIES
from audiozoo.models.byol_a.modeling_byol_a import ByolAConvBlock, max_pool_2x2

CONV_FAMILIES = ("audiozoo-byol-a", "audiozoo-frame-mn")


def test_every_cpu_entry_is_a_family_and_a_positive_size():
    model_types = {family.model_type for family in FAMILIES}
    assert set(runtime.CPU_BATCH_SIZE) <= model_types
    for size in [*runtime.CPU_BATCH_SIZE.values(), runtime.DEFAULT_CPU_BATCH_SIZE, runtime.DEFAULT_GPU_BATCH_SIZE]:
        assert isinstance(size, int) and size >= 1


@pytest.mark.parametrize("model_type", [family.model_type for family in FAMILIES])
def test_default_batch_size_follows_the_table(model_type):
    expected = runtime.CPU_BATCH_SIZE.get(model_type, runtime.DEFAULT_CPU_BATCH_SIZE)
    assert runtime.default_batch_size(model_type, "cpu") == expected
    assert runtime.default_batch_size(model_type, None) == expected  # no device: the CPU
    assert runtime.default_batch_size(model_type, torch.device("cpu")) == expected
    for device in ("cuda", "cuda:1", torch.device("cuda", 0), "mps"):
        assert runtime.default_batch_size(model_type, device) == runtime.DEFAULT_GPU_BATCH_SIZE == 32


@pytest.mark.parametrize("model_type", CONV_FAMILIES)
def test_convolutional_models_run_one_clip_at_a_time_on_the_cpu(model_type):
    assert runtime.default_batch_size(model_type, "cpu") == 1


def test_an_unknown_model_type_gets_the_defaults():
    assert runtime.default_batch_size("not-audiozoo", "cpu") == runtime.DEFAULT_CPU_BATCH_SIZE
    assert runtime.default_batch_size(None, "cpu") == runtime.DEFAULT_CPU_BATCH_SIZE
    assert runtime.default_batch_size(None, "cuda:0") == runtime.DEFAULT_GPU_BATCH_SIZE


# ----------------------------------------------------------------------------------------------------------------
# outputs do not depend on the batch


def _clips(lengths: list[float], seed: int = 0) -> list[np.ndarray]:
    """Clips of the given seconds at 16 kHz: tones with seeded noise, each different."""
    rng = np.random.default_rng(seed)
    clips = []
    for index, seconds in enumerate(lengths):
        time_axis = np.arange(int(seconds * 16000)) / 16000
        tone = 0.3 * np.sin(2 * np.pi * (220 + 170 * index) * time_axis * (1 + 0.2 * time_axis))
        clips.append((tone + 0.05 * rng.standard_normal(time_axis.size)).astype(np.float32))
    return clips


# parity case -> (Auto class, output compared, clip lengths of the batch). BEATs' clips are of one length: by
# default it reproduces the original's padding rule, under which a partly padded patch counts as audio (README).
CASES = {
    "byola_v1_d512": (AutoModel, "pooler_output", [3.0, 3.0, 2.2, 1.1]),  # conv, masked when lengths differ
    "sed_frame_mn06": (AutoModelForAudioFrameClassification, "logits", [3.0, 3.0, 3.0]),  # conv
    "beats_tiny_finetuned": (AutoModelForAudioClassification, "logits", [2.0, 2.0, 2.0]),  # transformer
    "ast_tiny_f10": (AutoModelForAudioClassification, "logits", [1.0, 1.0, 0.6]),  # transformer, fixed length
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_clip_gives_the_same_output_alone_and_in_a_batch(name, converted_dir):
    auto, output, lengths = CASES[name]
    folder = converted_dir(name)
    model = auto.from_pretrained(folder, dtype=torch.float32).eval()
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    clips = _clips(lengths)
    with torch.inference_mode():
        alone = [getattr(model(**extractor([clip], sampling_rate=16000)), output)[0] for clip in clips]
        for size in (2, len(clips)):
            batch = getattr(model(**extractor(clips[:size], sampling_rate=16000)), output)
            for index in range(size):
                torch.testing.assert_close(batch[index], alone[index], rtol=1e-4, atol=1e-5,
                                           msg=lambda message, index=index, size=size:
                                           f"{name}, clip {index} in a batch of {size}: {message}")


# ----------------------------------------------------------------------------------------------------------------
# BYOL-A's pooling on the CPU


@pytest.mark.parametrize("shape", [(1, 64, 64, 1001), (2, 3, 7, 10), (1, 1, 2, 2), (3, 4, 5, 3)])
def test_max_pool_2x2_is_max_pool2d(shape):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(shape, generator=generator)
    features.view(-1)[:: 7] = float("nan")
    expected = torch.nn.functional.max_pool2d(features, 2, stride=2)
    torch.testing.assert_close(max_pool_2x2(features), expected, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("threads", [1, 2])
def test_byol_a_conv_block_inference_path_is_the_original_order(threads):
    from audiozoo import ByolAConfig

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        block = ByolAConvBlock(1, ByolAConfig()).eval()
        with torch.no_grad():
            block.norm.running_mean.normal_()
            block.norm.running_var.uniform_(0.5, 1.5)
            block.norm.weight.normal_()  # negative scales too
        features = torch.randn(2, 1, 64, 201)
        expected = block.pool(torch.relu(block.norm(block.conv(features))))  # the original's order
        with torch.inference_mode():
            actual = block(features)
        assert torch.equal(actual, expected)
        # with gradients the original's modules run (max_pool2d's gradient: all to a window's first maximum)
        trained = block(features.clone().requires_grad_())
        assert trained.grad_fn is not None and "MaxPool" in type(trained.grad_fn).__name__
    finally:
        torch.set_num_threads(saved)
