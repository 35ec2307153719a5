"""A converted folder loads with plain transformers and trust_remote_code=True, audiozoo not importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

from audiozoo.hub.remote_code import flatten_imports

from conftest import EXAMPLE_CLIP

HIDDEN_PACKAGE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    class HideAudiozoo:  # make `import audiozoo` fail, whatever sys.path says
        def find_spec(self, name, path=None, target=None):
            if name == "audiozoo" or name.startswith("audiozoo."):
                raise ImportError("audiozoo is hidden in this test")
    sys.meta_path.insert(0, HideAudiozoo())
    import soundfile, torch
    from transformers import (AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification,
                              AutoModelForAudioFrameClassification)
    folder, clip = sys.argv[1], sys.argv[2]
    samples, rate = soundfile.read(clip, dtype="float32")
    samples = samples[:rate]  # one second: fits every tiny test model
    fe = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
    inputs = fe(samples, sampling_rate=rate)
    result = {"config": type(AutoConfig.from_pretrained(folder, trust_remote_code=True)).__name__,
              "fe": type(fe).__name__}
    for auto in (AutoModel, AutoModelForAudioClassification, AutoModelForAudioFrameClassification):
        torch.manual_seed(0)  # heads missing from an encoder-only folder are initialised alike in both processes
        model = auto.from_pretrained(folder, trust_remote_code=True, dtype=torch.float32).eval()
        with torch.no_grad():
            result[auto.__name__] = [type(model).__name__, model(**inputs)[0].tolist()]
    assert "audiozoo" not in sys.modules
    print(json.dumps(result))
    """
)


def test_flatten_imports():
    source = "from ...audio.fbank import KaldiFbank\nfrom ...heads import (\nfrom .configuration_beats import X\n"
    assert flatten_imports(source) == (
        "from .fbank import KaldiFbank\nfrom .heads import (\nfrom .configuration_beats import X\n"
    )


@pytest.mark.parametrize(
    "case,family,classifier",
    [("beats_tiny_finetuned", "beats", "BeatsForAudioClassification"),
     ("ast_tiny_f16", "ast", "AstForAudioClassification"),
     ("eat_tiny_finetuned", "eat", "EatForAudioClassification"),
     ("byola_v2_d3072", "byol_a", "ByolAForAudioClassification")],
)
def test_converted_folder_loads_as_remote_code_without_audiozoo(converted_dir, tmp_path, case, family, classifier):
    folder = converted_dir(case)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForAudioClassification"] == f"modeling_{family}.{classifier}"
    front_end = "melspec.py" if family == "byol_a" else "fbank.py"
    assert {f"modeling_{family}.py", front_end, "heads.py"} <= {path.name for path in folder.iterdir()}

    environment = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    completed = subprocess.run(
        [sys.executable, "-c", HIDDEN_PACKAGE_SCRIPT, str(folder), str(EXAMPLE_CLIP)],
        capture_output=True, text=True, env=environment, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    remote = json.loads(completed.stdout.strip().splitlines()[-1])
    prefix = classifier.removesuffix("ForAudioClassification")
    assert remote["config"] == f"{prefix}Config" and remote["fe"] == f"{prefix}FeatureExtractor"
    assert remote["AutoModelForAudioClassification"][0] == classifier
    assert remote["AutoModelForAudioFrameClassification"][0] == f"{prefix}ForAudioFrameClassification"

    import soundfile

    samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    samples = samples[:rate]
    fe = AutoFeatureExtractor.from_pretrained(folder)
    torch.manual_seed(0)
    model = AutoModelForAudioClassification.from_pretrained(folder, dtype=torch.float32).eval()
    encoder = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        local = model(**fe(samples, sampling_rate=rate)).logits
        local_encoder = encoder(**fe(samples, sampling_rate=rate))[0]
    torch.testing.assert_close(torch.tensor(remote["AutoModelForAudioClassification"][1]), local, atol=0, rtol=0)
    torch.testing.assert_close(torch.tensor(remote["AutoModel"][1]), local_encoder, atol=0, rtol=0)


SED_SCRIPT = HIDDEN_PACKAGE_SCRIPT.replace(
    "for auto in (AutoModel, AutoModelForAudioClassification, AutoModelForAudioFrameClassification):",
    "for auto in (AutoModel, AutoModelForAudioFrameClassification):",
).replace("samples = samples[:rate]", "samples = samples[: 2 * rate]")


@pytest.mark.parametrize("case,classifier",
                         [("sed_atstf_tiny", "AtstFrameForAudioFrameClassification"),
                          ("sed_m2d_tiny", "M2dForAudioFrameClassification"),
                          ("sed_frame_mn06", "FrameMnForAudioFrameClassification"),
                          ("sed_beats_tiny", "BeatsForAudioFrameClassification")])
def test_sed_folder_loads_as_remote_code_without_audiozoo(converted_dir, tmp_path, case, classifier):
    folder = converted_dir(case)
    environment = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    completed = subprocess.run([sys.executable, "-c", SED_SCRIPT, str(folder), str(EXAMPLE_CLIP)],
                               capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    remote = json.loads(completed.stdout.strip().splitlines()[-1])
    assert remote["AutoModelForAudioFrameClassification"][0] == classifier

    import soundfile

    from transformers import AutoModelForAudioFrameClassification

    samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    fe = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModelForAudioFrameClassification.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        local = model(**fe(samples[: 2 * rate], sampling_rate=rate)).logits
    torch.testing.assert_close(torch.tensor(remote["AutoModelForAudioFrameClassification"][1]), local, atol=0, rtol=0)
