"""The round-trip check every conversion ends with: exact weights, same features, outputs within a scale-relative
tolerance (identical weights loaded at other memory alignments give last-bit differences on CPU)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoFeatureExtractor

from audiozoo.conversion.common import CheckpointError
from audiozoo.conversion.verify import auto_class_for, compare_state_dicts, outputs_agree, verify_round_trip


def _load(folder):
    model = auto_class_for(AutoConfig.from_pretrained(folder)).from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoFeatureExtractor.from_pretrained(folder)


def test_a_faithful_folder_passes(converted_dir):
    folder = converted_dir("sed_frame_mn06")
    model, feature_extractor = _load(folder)
    assert verify_round_trip(model, feature_extractor, folder) < 1e-4


def test_a_changed_weight_is_named(converted_dir):
    folder = converted_dir("sed_frame_mn06")
    model, feature_extractor = _load(folder)
    name, parameter = next(iter(model.named_parameters()))
    with torch.no_grad():
        parameter.view(-1)[0] += 1e-6  # far below any output tolerance: only the exact weight check sees it
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        verify_round_trip(model, feature_extractor, folder)


def test_missing_unexpected_and_reshaped_weights_are_named():
    weights = {"a": torch.zeros(2, 3), "b": torch.ones(4)}
    with pytest.raises(CheckpointError, match=r"missing weights \['b'\], unexpected weights \['c'\]"):
        compare_state_dicts(weights, {"a": weights["a"], "c": torch.ones(4)}, "folder")
    with pytest.raises(CheckpointError, match=r"a is torch.float32 \(3, 2\), converted torch.float32 \(2, 3\)"):
        compare_state_dicts(weights, {"a": torch.zeros(3, 2), "b": weights["b"]}, "folder")
    with pytest.raises(CheckpointError, match=r"b is torch.float16"):
        compare_state_dicts(weights, {"a": weights["a"], "b": weights["b"].half()}, "folder")


def test_output_tolerance_is_relative_to_the_output_scale():
    torch.manual_seed(0)
    large = 8 * torch.randn(4, 250, 447)
    assert outputs_agree(large, large + 1.4e-4)  # the drift seen on width-1.0 frame-MobileNet logits
    assert not outputs_agree(large, large + 0.01)
    small = 1e-3 * torch.randn(10)
    assert outputs_agree(small, small + 5e-6)
    assert not outputs_agree(small, small + 5e-5)
    assert not outputs_agree(large, large[:, :-1])
    ids = torch.arange(6)
    assert outputs_agree(ids, ids.clone()) and not outputs_agree(ids, ids.flip(0))
