"""Every released architecture, at its released size: a random-weight file in the original layout converts with the
conversion script, loads through the Auto classes and runs a short clip with the converted weights' outputs.

Slow (minutes, and files of up to 1.3 GB in a temporary folder): `python -m pytest -q -m slow`.
"""

from __future__ import annotations

import pytest
import torch
from released import beats, eat_byol_a_frame_mn, timm_vits
from released.common import run_conversion_script, short_clip
from transformers import AutoConfig, AutoFeatureExtractor

from audiozoo.conversion.verify import auto_class_for, outputs_agree

RELEASES = beats.RELEASES + timm_vits.RELEASES + eat_byol_a_frame_mn.RELEASES


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES, ids=lambda release: release.name)
def test_released_size_converts_loads_and_runs(release, tmp_path):
    source = release.build()
    original = tmp_path / release.filename
    torch.save(release.write(source), original)
    output_dir = tmp_path / "converted"
    run_conversion_script(release.script, original, output_dir, *release.convert_args)
    original.unlink()

    config = AutoConfig.from_pretrained(output_dir)
    for name, value in release.expect.items():
        assert getattr(config, name) == value, f"{name}: {getattr(config, name)!r}, released {value!r}"
    model = auto_class_for(config).from_pretrained(output_dir, dtype=torch.float32).eval()
    assert type(model) is type(source)
    feature_extractor = AutoFeatureExtractor.from_pretrained(output_dir)
    rate = feature_extractor.sampling_rate
    inputs = feature_extractor(short_clip(rate, release.clip_seconds), sampling_rate=rate, return_tensors="pt")
    expected, actual = release.compared_output(source, inputs), release.compared_output(model, inputs)
    assert torch.isfinite(actual).all()
    assert actual.shape == expected.shape
    assert outputs_agree(expected, actual), f"max abs diff {(expected - actual).abs().max():.3g}"
