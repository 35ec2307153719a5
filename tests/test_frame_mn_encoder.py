"""Frame-MobileNet encoder (PretrainedSED frame_mn): key layout, parity with the original, width inference."""

from __future__ import annotations

import pytest
import torch
from conftest import ParityCase, load_case

from audiozoo.models.frame_mn import (
    FRAME_MN_PREFIX,
    FrameMobileNetEncoder,
    extract_encoder_state_dict,
    make_divisible,
    width_from_state_dict,
)

CASE = "sed_frame_mn06"


@pytest.fixture(scope="module")
def case() -> ParityCase:
    return load_case(CASE)


@pytest.fixture(scope="module")
def checkpoint(case: ParityCase) -> dict[str, torch.Tensor]:
    return torch.load(case.checkpoint, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def encoder(case: ParityCase, checkpoint: dict[str, torch.Tensor]) -> FrameMobileNetEncoder:
    model = FrameMobileNetEncoder(width_mult=case.spec["config"]["base"]["width_mult"])
    model.load_state_dict(extract_encoder_state_dict(checkpoint), strict=True)
    return model.eval()


def test_make_divisible_matches_reference_rule() -> None:
    assert [make_divisible(16 * w, 8) for w in (0.3, 0.6, 1.0)] == [8, 16, 16]
    assert make_divisible(160 * 0.3, 8) == 48
    assert make_divisible(200 // 4, 8) == 48  # SE squeeze of a 200-channel block
    assert make_divisible(144 // 4, 8) == 40


def test_keys_match_released_layout(case: ParityCase, checkpoint: dict[str, torch.Tensor]) -> None:
    """Module keys == the released file's encoder keys (case.json) == the case checkpoint's, shapes included."""
    model = FrameMobileNetEncoder(width_mult=case.spec["config"]["base"]["width_mult"])
    ours = [FRAME_MN_PREFIX + key for key in model.state_dict()]
    released = [key for key in case.spec["released_keys"] if key.startswith(FRAME_MN_PREFIX)]
    assert ours == released
    assert ours == [key for key in checkpoint if key.startswith(FRAME_MN_PREFIX)]
    for key, value in model.state_dict().items():
        assert value.shape == checkpoint[FRAME_MN_PREFIX + key].shape, key
    assert "features.4.block.2.conc_se_layers.0.fc1.weight" in model.state_dict()
    assert model.hidden_size == case.spec["config"]["predictions_wrapper"]["embed_dim"]


def test_parity_sequence(case: ParityCase, encoder: FrameMobileNetEncoder) -> None:
    """Expected mel -> encoder matches PredictionsWrapper.model(mel) of the original."""
    with torch.no_grad():
        sequence = encoder(case.expected["mel"])
    expected = case.expected["sequence"]
    assert sequence.shape == expected.shape == (1, 250, 288)
    max_diff = (sequence - expected).abs().max().item()
    print(f"frame_mn sequence max abs diff: {max_diff:.3e}")
    torch.testing.assert_close(sequence, expected, **case.tolerance("sequence"))


def test_width_inference(case: ParityCase, checkpoint: dict[str, torch.Tensor]) -> None:
    assert width_from_state_dict(checkpoint) == case.spec["config"]["base"]["width_mult"] == 0.3
    for width, hidden in ((0.6, 576), (1.0, 960)):
        model = FrameMobileNetEncoder(width_mult=width)
        assert model.hidden_size == hidden
        assert width_from_state_dict(model.state_dict(), prefix="") == width
        renamed = {"frame_mn." + key: value for key, value in model.state_dict().items()}
        assert width_from_state_dict(renamed, prefix="frame_mn.") == width


def test_width_inference_rejects_foreign_state_dicts(checkpoint: dict[str, torch.Tensor]) -> None:
    with pytest.raises(ValueError, match="no keys start with"):
        width_from_state_dict(checkpoint, prefix="model.net.")
    broken = dict(checkpoint)
    broken["model.frame_mn.features.7.block.0.0.weight"] = torch.zeros(99, 16, 1, 1)
    with pytest.raises(ValueError, match="no width_mult"):
        width_from_state_dict(broken)


def test_mn06_channel_table() -> None:
    """Released mn06 topology (research notes): c0 16, (expanded, out) per block, SE squeeze widths, 576 out."""
    model = FrameMobileNetEncoder(width_mult=0.6)
    assert model.features[0][0].out_channels == 16
    table = []
    for block in model.features[1:16]:
        depthwise = [m for m in block.block if isinstance(m, torch.nn.Sequential)][-2][0]
        table.append((depthwise.out_channels, block.out_channels))
    assert table == [(16, 16), (40, 16), (40, 16), (40, 24), (72, 24), (72, 24), (144, 48), (120, 48), (112, 48),
                     (112, 48), (288, 64), (400, 64), (400, 96), (576, 96), (576, 96)]
    residual = [block.use_residual for block in model.features[1:16]]
    assert residual == [True, False, False, False, True, False, False, False, True, True, False, True, False,
                        True, False]
    params = sum(p.numel() for p in model.parameters()) + 2 * (576 * 447 + 447)
    assert round(params / 1e6, 2) == 1.62


def test_output_shape_12_seconds() -> None:
    model = FrameMobileNetEncoder(width_mult=0.3).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 128, 1200))
    assert out.shape == (2, 300, model.hidden_size)
    assert FrameMobileNetEncoder.output_length(1200) == 300
    assert FrameMobileNetEncoder.output_length(1001) == 251
    with torch.no_grad():
        assert model(torch.randn(1, 1, 128, 1001)).shape[1] == 251


def test_batch_items_are_independent_in_eval(encoder: FrameMobileNetEncoder, case: ParityCase) -> None:
    mel = case.expected["mel"]
    batch = torch.cat([mel, mel.flip(-1)])
    with torch.no_grad():
        together = encoder(batch)
        alone = encoder(mel)
    torch.testing.assert_close(together[:1], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 128, 1000), (1, 2, 128, 1000), (128, 1000), (1, 1, 1, 128, 1000)])
def test_rejects_non_mel_shapes(shape: tuple[int, ...]) -> None:
    model = FrameMobileNetEncoder(width_mult=0.3)
    with pytest.raises(ValueError, match=r"\[batch, 1, n_mels, frames\]"):
        model(torch.randn(*shape))


def test_rejects_too_many_mel_bins() -> None:
    model = FrameMobileNetEncoder(width_mult=0.3)
    with pytest.raises(ValueError, match="mel bins"):
        model(torch.randn(1, 1, 256, 100))
