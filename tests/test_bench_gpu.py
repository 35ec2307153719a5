"""bench/gpu.sh, the one GPU script: its CPU dry run goes through every section and every family (tiny configs, the
same code paths as on a GPU), and a device the machine lacks is one line, not a traceback."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu.sh"
SECTIONS = ("parity", "sdpa", "throughput", "sed", "memory")


def load_bench_gpu():
    """bench/bench_gpu.py as a module (its top level imports only the standard library)."""
    if "bench_gpu" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "bench" / "bench_gpu.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_gpu"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["bench_gpu"]


BENCH = load_bench_gpu()
FAMILY_CASES = {family.key: family.cases for family in BENCH.FAMILIES}
RELEASED = [family.key for family in BENCH.FAMILIES if family.released]
ATTENTION = [family.key for family in BENCH.FAMILIES if family.released and family.attention]
SED = [family.key for family in BENCH.FAMILIES if family.sed]


def run_script(*args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          check=False, env={**os.environ, "PYTHON": sys.executable})


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("gpu_bench")
    result = run_script("--device", "cpu", "--dry-run", "--output", str(output), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output, json.loads((output / "gpu_bench.json").read_text()), result.stdout


def _number(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value >= 0


def test_dry_run_writes_every_section_and_the_table(dry_run):
    output, result, stdout = dry_run
    assert set(SECTIONS) <= set(result["sections"])
    assert result["failures"] == []
    assert result["settings"]["dry_run"] and result["settings"]["device"] == "cpu"
    assert result["environment"]["torch"] == torch.__version__
    table = (output / "gpu_bench.md").read_text()
    for title in ("## Parity", "## Eager vs SDPA", "## Throughput", "## Peak memory", "## Sound-event detection"):
        assert title in table and title in stdout


def test_every_parity_case_passed_in_float32_and_bfloat16(dry_run):
    rows = dry_run[1]["sections"]["parity"]["rows"]
    for family, cases in FAMILY_CASES.items():
        for case in cases:
            mine = [row for row in rows if row["case"] == case]
            assert {row["dtype"] for row in mine} == {"float32", "bfloat16"}, (family, case)
            for row in mine:
                assert row["status"] == "ok" and row["passed"] is True, row
                assert row["family"] == family
    float32 = [row for row in rows if row["dtype"] == "float32"]
    assert all(_number(row["max_abs_diff"]) for row in float32)
    assert {row["attention"] for row in float32} == {"sdpa", "eager", "n/a"}
    assert all(_number(row["max_rel_diff"]) and row["max_rel_diff"] <= row["bound"]
               for row in rows if row["dtype"] == "bfloat16")


def test_every_family_has_numbers(dry_run):
    sections = dry_run[1]["sections"]
    batches = dry_run[1]["settings"]["batches"]
    throughput = [row for row in sections["throughput"]["rows"] if "mode" in row]
    for family in RELEASED:
        for mode in ("fp32", "bf16"):
            for batch in batches:
                (row,) = [row for row in throughput if (row["family"], row["mode"], row["batch"]) == (family, mode, batch)]
                assert row["status"] == "ok" and _number(row["clips_per_s"]) and row["clips_per_s"] > 0, row
        compiled = [row for row in throughput if row["family"] == family and row["mode"] == "compiled"
                    and row["status"] == "ok"]
        assert {row["batch"] for row in compiled} >= {batch for batch in batches if batch > 1}, family
        for row in compiled:  # traced by dynamo (backend "eager"), no fall-back, no graph break
            assert row["compiled"] is True and "fallback" not in row and row["graph_breaks"] == 0, row
            assert _number(row["clips_per_s"]) and _number(row["compile_s"])
        (front,) = [row for row in sections["throughput"]["frontend"] if row["family"] == family]
        assert front["status"] == "ok" and front["clips_per_s"] > 0
        memory = [row for row in sections["memory"]["rows"] if row["family"] == family]
        assert len(memory) >= 2 * len(batches)
    for family in ATTENTION:
        (row,) = [row for row in sections["sdpa"]["rows"] if row["family"] == family]
        assert row["status"] == "ok" and row["max_rel_diff"] < 1e-4, row
        assert _number(row["eager_s"]) and _number(row["sdpa_s"])
    for family in SED:
        rows = {row["dtype"]: row for row in sections["sed"]["rows"] if row["family"] == family}
        assert set(rows) == {"float32", "bfloat16"}
        for row in rows.values():
            assert row["status"] == "ok" and row["real_time_factor"] > 0 and row["audio_s"] == 20.0, row
            assert row["front_end_device"] == "cpu"
        assert _number(rows["bfloat16"]["max_abs_diff_vs_fp32"])


def test_every_parity_case_and_family_is_in_the_table():
    from conftest import PARITY

    assert sorted(case for cases in FAMILY_CASES.values() for case in cases) == sorted(
        path.name for path in PARITY.iterdir() if (path / "case.json").exists())
    from audiozoo.families import FAMILIES

    assert len(FAMILY_CASES) == len(FAMILIES) + 1  # + the BEATs SED student (a BEATs frame classifier)


def test_budget_guard_skips_units_with_a_reason():
    budget = BENCH.Budget(10.0, {"cell": 5.0})
    assert budget.allows("cell") == (budget.elapsed() + 5.0 <= 10.0)
    budget.observe("cell", 100.0)
    assert not budget.allows("cell") and "time budget" in budget.reason("cell")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_missing_cuda_is_one_line(tmp_path, capsys):
    """What `bash bench/gpu.sh` (which execs bench_gpu.py) prints without a GPU: one line, exit status 2."""
    assert BENCH.main(["--device", "cuda", "--output", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("bench/gpu.sh: device cuda:") and "use device cpu" in err and "Traceback" not in err
    assert BENCH.main(["--device", "mps", "--output", str(tmp_path)]) == 2
    assert "runs on cuda, cuda:N or cpu" in capsys.readouterr().err
    assert not (tmp_path / "gpu_bench.json").exists()
