"""Shared fixtures: parity cases copied from ../shared/parity and models converted from them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import audiozoo  # noqa: F401  (registers the Auto classes)

FIXTURES = Path(__file__).parent / "fixtures"
PARITY = FIXTURES / "parity"
REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CLIP = REPO / "examples" / "audio" / "clip_a_16k_4s.wav"


@dataclass
class ParityCase:
    name: str
    spec: dict
    inputs: dict[str, torch.Tensor]
    expected: dict[str, torch.Tensor]

    @property
    def checkpoint(self) -> Path:
        return PARITY / self.name / self.spec["checkpoint"]

    def tolerance(self, tensor: str) -> dict[str, float]:
        """atol/rtol for `tensor` from case.json (a per-tensor entry wins over the case default)."""
        tolerance = self.spec["tolerance"]
        specific = tolerance.get("per_tensor", {}).get(tensor)
        if isinstance(specific, dict):
            return {"atol": specific["atol"], "rtol": specific["rtol"]}
        specific = specific or tolerance.get("per_output", {}).get(tensor)
        if isinstance(specific, dict):
            return {"atol": specific["atol"], "rtol": specific["rtol"]}
        if specific == "exact":
            return {"atol": 0.0, "rtol": 0.0}
        return {"atol": tolerance["atol"], "rtol": tolerance["rtol"]}

    def unpadded_waveforms(self) -> list[torch.Tensor]:
        """The case's clips without their zero padding (what a user would pass to the feature extractor)."""
        valid = ~self.inputs["padding_mask"]
        return [wave[mask] for wave, mask in zip(self.inputs["waveforms"], valid, strict=True)]


def load_case(name: str) -> ParityCase:
    folder = PARITY / name
    spec = json.loads((folder / "case.json").read_text())
    return ParityCase(name, spec, load_file(folder / "inputs.safetensors"), load_file(folder / "expected.safetensors"))


def ast_options(case: ParityCase) -> dict:
    """What the AST recipe and file name would tell the conversion (the tiny case's file name does not)."""
    config = case.spec["config"]
    return dict(frequency_stride=config["fstride"], time_stride=config["tstride"], max_length=config["input_tdim"],
                num_attention_heads=config["num_heads"])


def convert_case(case: ParityCase, out: Path) -> Path:
    """Convert a parity case with its family's conversion entry point (the one the CLI and scripts use)."""
    family = case.spec["family"]
    if family in ("beats", "beats_tokenizer"):
        from audiozoo.conversion.beats import convert_and_save

        return convert_and_save(case.checkpoint, out)
    if family == "ast":
        from audiozoo.conversion.ast import convert_and_save

        return convert_and_save(case.checkpoint, out, **ast_options(case))
    if family == "eat":
        from audiozoo.conversion.eat import convert_and_save

        return convert_and_save(case.checkpoint, out)
    if family in ("byol_a", "byol_a2"):
        from audiozoo.conversion.byol_a import convert_and_save

        return convert_and_save(case.checkpoint, out, norm_stats=tuple(case.spec["config"]["norm_stats"]))
    if family in SED_MODEL_NAMES:
        from audiozoo.conversion.pretrained_sed import convert_and_save

        return convert_and_save(case.checkpoint, out, SED_MODEL_NAMES[family], **sed_options(case))
    raise ValueError(f"no conversion for family {family!r}")


# parity-case family -> PretrainedSED release name given to the conversion
SED_MODEL_NAMES = {"atst_frame": "ATST-F", "sed_wrapper": "ATST-F", "fpasst": "fpasst", "asit": "ASIT", "m2d": "M2D",
                   "frame_mn": "frame_mn06", "beats_sed": "BEATs"}


def sed_options(case: ParityCase) -> dict:
    """What a user passes for a PretrainedSED file: the head type and, for the narrowed cases, the head count."""
    config = case.spec["config"]
    options = {"head_type": config["predictions_wrapper"].get("head_type", "linear")}
    backbone = config.get("base") or config.get("backbone") or {}
    if "num_heads" in backbone:
        options["num_attention_heads"] = backbone["num_heads"]
    return options


@pytest.fixture(scope="session")
def converted_dir(tmp_path_factory):
    """Convert a parity case once per session; returns its output folder."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = convert_case(load_case(name), tmp_path_factory.mktemp(name))
        return cache[name]

    return get


@pytest.fixture
def one_thread():
    """One intra-op thread for tiny training runs: more gain nothing, and spinning threads stall on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sweep_clip(frequency: float, seconds: float, seed: int):
    """A 16 kHz chirp starting at `frequency` plus a little noise (float32): synthetic training audio."""
    import numpy as np

    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * 16000)) / 16000
    sweep = np.sin(2 * np.pi * frequency * time * (1 + 0.5 * time))
    return (0.3 * sweep + 0.05 * rng.standard_normal(time.size)).astype(np.float32)


def write_unlabelled_clips(folder: Path) -> None:
    """2 s clips for pre-training tests: four in folder/audio, two (one batch of 2) in folder/fixed."""
    import soundfile

    for name in ("audio", "fixed"):
        (folder / name).mkdir()
    for index, frequency in enumerate((220.0, 660.0, 1500.0, 3000.0)):
        soundfile.write(folder / "audio" / f"clip_{index}.wav", sweep_clip(frequency, 2.0, index), 16000)
        if index < 2:
            soundfile.write(folder / "fixed" / f"clip_{index}.wav", sweep_clip(frequency, 2.0, index), 16000)
