"""The GPU check and benchmark of every family, in one run: parity, eager vs SDPA, throughput, SED, peak memory.

    bash bench/gpu.sh [--device cuda] [--output DIR] [--dry-run] [--families beats,ast,...]
                      [--sections parity,sdpa,throughput,sed] [--modes fp32,bf16,compiled] [--time-budget 420]

Writes one JSON file (`gpu_bench.json`: environment, settings, every section's rows, failures) and one markdown
file (`gpu_bench.md`: the tables, also printed) to --output. Sections, in the order they run:

- parity: every family's tiny parity case (tests/fixtures/parity: the original code's outputs), converted in
  memory with the family's conversion, run on the device end to end (front end on the device too) in float32
  with SDPA and with eager attention, against the tests' tolerances (the case's atol/rtol per tensor; PretrainedSED
  also from the expected mel, and end to end with the case's end_to_end_atol); then under bfloat16 autocast (SDPA)
  against the float32 outputs on the same device: max |bf16 - fp32| / max |fp32| within the bound
  audiozoo.runtime states (per family where it has per-family bounds). Codebook ids (discrete) are compared
  exactly in float32; under bfloat16 their agreement is reported, not checked.
- sdpa: the attention families at released size (random weights), a batch of 8 clips of 10 s, float32: eager vs
  SDPA outputs (max abs difference, and relative to max |output|), time per batch, peak memory of each.
- throughput: model clips/s at released size (random weights) at batch 1 / 8 / 32 of 10 s clips, in float32,
  under bfloat16 autocast, and compiled (float32, `audiozoo.runtime.compile_model`, torch's default inductor
  backend). The front end is not in these numbers: features are computed on the device before the timed calls;
  the front end's own clips/s (float32, on the device, largest batch) is a separate column. Compiled: the batch
  dimension is marked dynamic at batch 8, so that 8 and 32 can share one graph ("graphs" in the row counts the
  graphs compiled so far; BEATs recompiles per batch size: its blocked bias takes its row count from the batch);
  batch 1 is specialised by torch and compiles its own graph. The first call's extra seconds are the compile time
  (not in clips/s); a fall-back to eager (compile_model warns) is recorded as such, and so are graph breaks.
- sed: 10 minutes of real audio (the shared clips and their reversed copies, tiled) through
  `pipeline("sound-event-detection")` of each PretrainedSED student at released size (random weights; head biases
  set to -4 so that, as with trained models, frames are mostly below the threshold), chunk_batch_size 32, float32
  and bfloat16 autocast: seconds (after a 20 s warm-up call), real-time factor, events, max |bf16 - fp32| of the
  frame probabilities, peak memory, and the device the pipeline's front end ran on (recorded, not chosen: the
  pipeline decides). The pipeline's time includes its front end and post-processing.
- memory: the peak of every throughput cell (the sdpa and sed rows carry theirs): on CUDA
  torch.cuda.max_memory_allocated after reset_peak_memory_stats (weights included; and above what was allocated
  at the cell's start); on the CPU the process's peak resident memory (Linux VmHWM, reset per cell; and above the
  cell's start), or "n/a" where it cannot be reset.

Conventions: float32 is float32 (TF32 off for matmuls, convolutions and RNNs), cudnn.benchmark off (the same
kernels run to run); both are recorded in the environment. A timing is the median of 3 to 20 calls (until 0.5 s)
after 2 warm-up calls, each call between torch.cuda.synchronize() calls. Models are built directly on the device
from their released configs (tests/released), with default-initialised random weights, in eval mode, under
torch.inference_mode; each family is built once for the eager sections and afresh for its compiled cells.

Budget: the run must finish in under 8 minutes on one GPU. --time-budget (default 420 s from the start of the
process; 60 s left for a unit that overruns its estimate and for the output) is a guard: before each unit its
estimated cost is checked against what is left, and a unit that does not fit is recorded as skipped with the
reason, never half-run. Estimates start as priors (ESTIMATES) and become 1.1 x the longest unit of the kind
measured so far. Compiled cells run last (they cost the most), batch 8/32 for every family first, then batch 1,
so the guard drops those first. Estimated for one H200 (from FLOPs and typical compile times; not measured here):
start-up ~15 s; parity ~20 s; per family ~8-10 s (build, front end, sdpa, 6 throughput cells: the heaviest,
AST fp32 at batch 32, ~8 TFLOP per call, ~0.2 s) -> ~90 s; SED ~3 s per student and precision -> ~40 s; so
~165 s before compiling. Compiling costs ~20-40 s per inductor graph with a cold cache: batch 8/32 for the 10
families is ~12 graphs (BEATs and its student two each), ~240-480 s, so batch 8/32 is expected for most or all
families and batch 1 for few; a second run finds torch's compile caches warm and fills in more.

--dry-run: the same code paths, tiny: 1 s clips, batches 1 / 2 / 3, one timed call after one warm-up, 2-layer
configs of width 64 (AST and EAT at 128 frames, frame-MobileNet width 0.4, BYOL-A at its released size), eager
attention in parity for each family's first case, SED on 20 s of audio with chunk_batch_size 2, one CPU thread,
compiled with the "eager" backend (dynamo traces, guards and recompiles as on a GPU, without code generation;
batch 2 and 3 for every family, batch 1 for the first); ~30-60 s on a 2-core CPU (tests/test_bench_gpu.py).

Exit status: 0 when every unit that ran passed (skipped units do not fail the run), 1 when a parity check
failed or a unit raised, 2 for a device this machine does not have (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

START = time.perf_counter()  # the time budget counts from here

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"

SECTIONS = ("parity", "sdpa", "throughput", "sed")
MODES = ("fp32", "bf16", "compiled")
DEFAULT_BUDGET_S = 420.0


@dataclass(frozen=True)
class Family:
    """One family of the benchmark: its parity cases and whether it has attention (sdpa section) and SED."""

    key: str
    cases: tuple[str, ...]
    attention: bool
    sed: bool = False
    released: bool = True  # built at released size for sdpa / throughput / sed


FAMILIES: tuple[Family, ...] = (
    Family("beats", ("beats_tiny_ssl", "beats_tiny_finetuned"), attention=True),
    # the tokenizer is BEATs's encoder plus a codebook look-up: parity only (its throughput is beats's)
    Family("beats-tokenizer", ("beats_tokenizer_tiny",), attention=True, released=False),
    Family("ast", ("ast_tiny_f10", "ast_tiny_f16"), attention=True),
    Family("eat", ("eat_tiny_pretrained", "eat_tiny_finetuned"), attention=True),
    Family("byol-a", ("byola_v1_d512", "byola_v2_d3072"), attention=False),
    Family("atst-frame", ("sed_atstf_tiny", "sed_wrapper_rnn_attention"), attention=True, sed=True),
    Family("fpasst", ("sed_fpasst_tiny",), attention=True, sed=True),
    Family("asit", ("sed_asit_tiny",), attention=True, sed=True),
    Family("m2d", ("sed_m2d_tiny",), attention=True, sed=True),
    Family("frame-mn", ("sed_frame_mn06",), attention=False, sed=True),
    Family("beats-sed", ("sed_beats_tiny",), attention=True, sed=True),
)
FAMILY_BY_KEY = {family.key: family for family in FAMILIES}

# what each family is built as at released size (the model card it stands for)
RELEASE_NAMES = {
    "beats": "beats-iter3-plus-as2m-finetuned-as2m-cpt1 (BeatsForAudioClassification, 527 classes)",
    "ast": "ast-audioset-10-10-0.4593 (AstForAudioClassification, 1024 frames, 527 classes)",
    "eat": "eat-base-epoch30-finetuned-as2m (EatForAudioClassification, 1024 frames, 527 classes)",
    "byol-a": "byol-a-v2-d3072 (ByolAModel)",
    "atst-frame": "pretrainedsed-atst-frame-strong (frame classifier, 447 classes)",
    "fpasst": "pretrainedsed-fpasst-strong (frame classifier, 447 classes)",
    "asit": "pretrainedsed-asit-strong (frame classifier, 447 classes)",
    "m2d": "pretrainedsed-m2d-strong (frame classifier, 447 classes)",
    "frame-mn": "pretrainedsed-frame-mn10-strong (frame classifier, width 1.0, 447 classes)",
    "beats-sed": "pretrainedsed-beats-sed-strong (BeatsForAudioFrameClassification, 447 classes)",
}

# estimated seconds per unit of work (checked against the budget before the unit runs)
ESTIMATES = {
    "cuda": {"parity_case": 2.0, "build": 3.0, "sdpa": 5.0, "cell": 2.5, "frontend": 1.0, "sed": 8.0,
             "compile": 45.0},
    "cpu": {"parity_case": 2.0, "build": 1.0, "sdpa": 1.0, "cell": 0.5, "frontend": 0.2, "sed": 2.0,
            "compile": 3.0},
}


@dataclass
class Settings:
    device: object  # torch.device
    dry_run: bool
    clip_seconds: float
    batches: tuple[int, ...]
    sdpa_batch: int
    sed_seconds: float
    sed_chunk_batch: int
    warm_up: int
    min_repeats: int
    max_repeats: int
    min_time_s: float
    compile_backend: str | None
    families: tuple[Family, ...]
    sections: tuple[str, ...]
    modes: tuple[str, ...]
    budget_s: float

    def describe(self) -> dict:
        return {
            "device": str(self.device), "dry_run": self.dry_run, "clip_seconds": self.clip_seconds,
            "batches": list(self.batches), "sdpa_batch": self.sdpa_batch, "sed_seconds": self.sed_seconds,
            "sed_chunk_batch_size": self.sed_chunk_batch, "warm_up_calls": self.warm_up,
            "timed_calls": f"median of {self.min_repeats} to {self.max_repeats} calls (until {self.min_time_s} s)",
            "compile_backend": self.compile_backend or "inductor (torch default)",
            "families": [family.key for family in self.families], "sections": list(self.sections),
            "modes": list(self.modes), "time_budget_s": self.budget_s,
            "throughput_excludes_front_end": True,
            "weights": "random (default initialisation), released sizes" if not self.dry_run
            else "random (default initialisation), tiny configs",
        }


class Budget:
    """The time guard: a unit runs only if its estimate fits in what is left of the budget. An estimate starts as
    the prior in ESTIMATES and becomes 1.1 x the longest unit of its kind measured in this run once one has run."""

    def __init__(self, seconds: float, estimates: dict[str, float]):
        self.seconds, self.estimates = seconds, dict(estimates)
        self.observed: dict[str, list[float]] = {}

    def observe(self, unit: str, seconds: float) -> None:
        self.observed.setdefault(unit, []).append(seconds)
        self.estimates[unit] = 1.1 * max(self.observed[unit])

    @contextlib.contextmanager
    def measure(self, unit: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(unit, time.perf_counter() - started)

    @staticmethod
    def elapsed() -> float:
        return time.perf_counter() - START

    def allows(self, unit: str, count: int = 1) -> bool:
        return self.elapsed() + self.estimates[unit] * count <= self.seconds

    def reason(self, unit: str, count: int = 1) -> str:
        return (f"time budget: {self.elapsed():.0f} s of {self.seconds:.0f} s spent, this unit needs "
                f"~{self.estimates[unit] * count:.0f} s")


class Report:
    """Rows of every section, failures, and progress lines."""

    def __init__(self):
        self.sections: dict[str, dict] = {
            "parity": {"description": "tiny parity cases on the device: float32 (tests' tolerances, SDPA and eager) "
                                      "and bfloat16 autocast (relative bound vs float32)", "rows": []},
            "sdpa": {"description": "eager vs SDPA attention, released size, float32", "rows": []},
            "throughput": {"description": "model clips/s (front end excluded; its clips/s in frontend rows)",
                           "rows": [], "frontend": []},
            "sed": {"description": "sound-event-detection pipeline on long real audio", "rows": []},
            "memory": {"description": "peak memory of every throughput cell", "rows": []},
        }
        self.failures: list[str] = []
        self.section_seconds: dict[str, float] = {}

    def add(self, section: str, row: dict, key: str = "rows") -> dict:
        self.sections[section][key].append(row)
        return row

    def fail(self, what: str) -> None:
        self.failures.append(what)

    @staticmethod
    def say(text: str) -> None:
        print(f"[{time.perf_counter() - START:6.1f} s] {text}", flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Devices, timing and memory


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function: Callable[[], object], settings: Settings) -> tuple[float, float, object]:
    """(median seconds of the timed calls, seconds of the first call, last result): `warm_up` untimed calls (the
    first is timed on its own: it carries compilation and lazy initialisation), then at least `min_repeats` and at
    most `max_repeats` calls, until `min_time_s` have passed; each call between device synchronisations."""
    device = settings.device
    synchronize(device)
    start = time.perf_counter()
    result = function()
    synchronize(device)
    first = time.perf_counter() - start
    for _ in range(settings.warm_up - 1):
        result = function()
    times: list[float] = []
    while len(times) < settings.min_repeats or (len(times) < settings.max_repeats and sum(times) < settings.min_time_s):
        synchronize(device)
        start = time.perf_counter()
        result = function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), first, result


def _proc_status() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


class PeakMemory:
    """Peak memory of a block: CUDA allocated bytes, or the CPU process's resident set (VmHWM reset at the start)."""

    def __init__(self, device):
        self.device = device
        self.peak: int | None = None
        self.start: int | None = None

    def __enter__(self):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
                self.start = _proc_status()["VmRSS"]
            except (OSError, KeyError):
                self.start = None
        return self

    def __exit__(self, *exc):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        elif self.start is not None:
            try:
                self.peak = _proc_status()["VmHWM"]
            except (OSError, KeyError):
                self.peak = None
        return False

    def fields(self) -> dict:
        if self.peak is None or self.start is None:
            return {"peak_mb": None, "peak_above_start_mb": None}
        return {"peak_mb": round(self.peak / 2**20, 1), "peak_above_start_mb": round((self.peak - self.start) / 2**20, 1)}


def memory_kind(device) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated after reset_peak_memory_stats (MiB; weights included)"
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "process peak resident memory (Linux VmHWM reset per cell; MiB; the whole process)"
    except OSError:
        return "n/a (the peak resident memory cannot be reset here)"


def set_precision_flags(device) -> dict:
    """float32 means float32 (no TF32), cudnn.benchmark off; returns what is set, for the environment record."""
    import torch

    torch.backends.cudnn.benchmark = False
    flags = {"cudnn.benchmark": False}
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9: the new API only (mixing raises)
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cudnn.rnn.fp32_precision = "ieee"
        flags["fp32_precision"] = {"cuda.matmul": torch.backends.cuda.matmul.fp32_precision,
                                   "cudnn.conv": torch.backends.cudnn.conv.fp32_precision,
                                   "cudnn.rnn": torch.backends.cudnn.rnn.fp32_precision}
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        flags["allow_tf32"] = {"cuda.matmul": False, "cudnn": False}
    return flags


def environment(settings: Settings, flags: dict) -> dict:
    import torch
    import transformers

    device = settings.device
    info = {
        "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "torch_cuda": torch.version.cuda, "transformers": transformers.__version__,
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "precision_flags": flags,
        "memory": memory_kind(device),
    }
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                            check=False, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update(device_name=torch.cuda.get_device_name(device),
                    capability=".".join(map(str, torch.cuda.get_device_capability(device))),
                    device_memory_gb=round(properties.total_memory / 2**30, 1),
                    cudnn=torch.backends.cudnn.version(), bf16_supported=torch.cuda.is_bf16_supported(),
                    fp16_supported=True)
    else:
        info.update(device_name=platform.processor() or platform.machine(), bf16_supported=True,
                    fp16_supported=True, note="CPU: bfloat16 runs under CPU autocast")
    return info


def free(device) -> None:
    """Give a dropped model's memory back: on CUDA collect (gc.freeze() after the imports keeps that fast) and
    empty the cache, so that the next cell's peak starts from what it allocates; on the CPU reference counting
    frees it."""
    import torch

    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()


def error_line(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {text}"


# ---------------------------------------------------------------------------------------------------------------
# Audio


def recording(seconds: float, rate: int):
    """Real audio: the two shared 10 s clips and their reversed copies tiled to `seconds` at `rate` (the repo's
    example clip where ../shared is missing)."""
    import numpy as np

    from audiozoo.audio.io import load_audio

    paths = sorted((REPO.parent / "shared" / "audio").glob("*.wav")) or [REPO / "examples" / "audio" / "clip_a_16k_4s.wav"]
    clips = [np.asarray(load_audio(path, sampling_rate=rate)[0], dtype=np.float32) for path in paths]
    pieces = clips + [clip[::-1].copy() for clip in clips]
    samples = round(seconds * rate)
    tiled = np.concatenate(pieces * (samples // sum(piece.size for piece in pieces) + 1))
    return np.ascontiguousarray(tiled[:samples], dtype=np.float32)


def clip_pool(count: int, seconds: float, rate: int) -> list:
    """`count` clips of `seconds`, cut at different offsets of the tiled recording."""
    length = round(seconds * rate)
    hop = round(1.3 * rate)
    audio = recording((count - 1) * hop / rate + seconds + 1, rate)
    return [audio[index * hop: index * hop + length].copy() for index in range(count)]


# ---------------------------------------------------------------------------------------------------------------
# Section a: parity


@dataclass
class Check:
    name: str
    actual: object  # torch.Tensor
    expected: object
    atol: float = 0.0
    rtol: float = 0.0
    exact: bool = False


def convert_in_memory(case):
    """The case's original file -> (model, feature extractor), with the conversion the CLI uses (no folder)."""
    from conftest import SED_MODEL_NAMES, ast_options, sed_options

    family = case.spec["family"]
    if family in ("beats", "beats_tokenizer"):
        from audiozoo.conversion.beats import convert_beats_checkpoint

        return convert_beats_checkpoint(case.checkpoint)
    if family == "ast":
        from audiozoo.conversion.ast import convert_ast_checkpoint

        return convert_ast_checkpoint(case.checkpoint, **ast_options(case))
    if family == "eat":
        from audiozoo.conversion.eat import convert_eat_checkpoint

        return convert_eat_checkpoint(case.checkpoint)
    if family in ("byol_a", "byol_a2"):
        from audiozoo.conversion.byol_a import convert_byol_a_checkpoint

        return convert_byol_a_checkpoint(case.checkpoint, norm_stats=tuple(case.spec["config"]["norm_stats"]))
    if family in SED_MODEL_NAMES:
        from audiozoo.conversion.pretrained_sed import convert_pretrained_sed_checkpoint

        return convert_pretrained_sed_checkpoint(case.checkpoint, SED_MODEL_NAMES[family], **sed_options(case))
    raise ValueError(f"no conversion for family {family!r}")


def _on(inputs, device) -> dict:
    return {key: value.to(device) for key, value in inputs.items()}


def parity_checks(case, model, fe, device, amp: Callable) -> list[Check]:
    """What tests/test_*parity*.py, test_ast.py, test_eat.py and test_byol_a.py compare for this case, computed on
    `device` (front end included); the model calls run inside `amp()` (float32: nothing, bf16: autocast)."""
    import torch

    family = case.spec["family"]
    expected = case.expected
    checks: list[Check] = []

    def add(name: str, actual, reference=None, tolerance: str | None = None, exact: bool = False, **override):
        tolerance_values = {} if exact else {**case.tolerance(tolerance or name), **override}
        checks.append(Check(name, actual.detach().cpu(), expected[tolerance or name] if reference is None else reference,
                            exact=exact, **tolerance_values))

    with torch.inference_mode():
        if family in ("beats", "beats_tokenizer"):
            rate = case.spec["inputs"]["sample_rate"]
            inputs = _on(fe(case.unpadded_waveforms(), sampling_rate=rate, device=device), device)
            add("fbank", inputs["input_values"])
            with amp():
                out = model(**inputs, output_hidden_states=True)
                unmasked = model(input_values=inputs["input_values"])
            add("padding_mask_out", ~out.attention_mask, exact=True)
            if family == "beats_tokenizer":
                add("last_hidden_state", out.last_hidden_state)
                add("quantize_input", out.quantizer_input)
                add("labels", out.codebook_ids.flatten(), exact=True)
            elif hasattr(out, "logits"):
                add("last_hidden_state", out.hidden_states[-1])
                add("frame_logits", out.patch_logits)
                add("probs", torch.sigmoid(out.logits.float()))
                add("probs_no_mask", torch.sigmoid(unmasked.logits.float()))
            else:
                add("last_hidden_state", out.last_hidden_state)
                add("hidden_states", torch.stack(out.hidden_states))
                add("last_hidden_state_no_mask", unmasked.last_hidden_state)
        elif family == "ast":
            clips = [wave[:length] for wave, length in zip(case.inputs["waveform"], case.inputs["lengths"], strict=True)]
            inputs = _on(fe(clips, sampling_rate=16000, device=device), device)
            add("fbank", inputs["input_values"])
            with amp():
                out = model(**inputs, output_hidden_states=True)
                encoded = model.ast(**inputs)
            add("logits", out.logits)
            add("hidden_states", torch.stack(out.hidden_states))
            add("last_hidden_state", encoded.last_hidden_state)
            add("pooled", encoded.pooler_output)
        elif family == "eat":
            clips = [case.inputs["waveform_a"], case.inputs["waveform_b"]]
            inputs = _on(fe(clips, sampling_rate=16000, truncation=True, device=device), device)
            add("fbank", inputs["input_values"], expected["fbank"][:, 0])
            with amp():
                if hasattr(model, "eat"):  # the fine-tuned classifier
                    out = model(**inputs)
                    encoded = model.eat(**inputs)
                    add("logits", out.logits)
                    add("probs", out.logits.float().sigmoid())
                else:
                    encoded = model(**inputs)
            add("last_hidden_state", encoded.last_hidden_state)
            add("cls_feature", encoded.pooler_output)
        elif family in ("byol_a", "byol_a2"):
            inputs = _on(fe(list(case.inputs["waveform"]), sampling_rate=16000, device=device), device)
            add("input_features", inputs["input_values"])
            with amp():
                out = model(**inputs)
            add("frames", out.last_hidden_state)
            add("embedding", out.pooler_output)
        else:  # PretrainedSED: from the expected mel (case atol/rtol), then end to end (the case's end_to_end_atol)
            beats = model.config.model_type == "audiozoo-beats"
            if case.name in ("sed_atstf_tiny", "sed_wrapper_rnn_attention"):
                fe.top_db_per_item = False  # the case's main outputs come from the batched front end
            features = _on(fe(list(case.inputs["waveform"]), sampling_rate=16000, device=device), device)
            mel = features["input_values"]
            add("mel", mel.transpose(1, 2).unsqueeze(1) if beats else mel)
            reference_mel = expected["mel"].to(device)
            model_input = reference_mel[:, 0].transpose(1, 2) if beats else reference_mel
            encoder = model.beats if beats else model.encoder
            with amp():
                sequence = encoder(model_input).last_hidden_state
                from_mel = model(model_input)
                end_to_end = model(**features)
            add("sequence", sequence)
            atol = case.spec["tolerance"]["end_to_end_atol"]
            for label, output, override in (("", from_mel, {}), ("end_to_end:", end_to_end, {"atol": atol})):
                if "strong_probs" in expected:  # the attention head's outputs are probabilities
                    pairs = {"strong_probs": output.probabilities.transpose(1, 2), "weak_probs": output.clip_probabilities}
                else:
                    pairs = {"strong_logits": output.logits.transpose(1, 2), "weak_logits": output.clip_logits}
                for key, value in pairs.items():
                    add(label + key, value, expected[key], tolerance=key, **override)
    return checks


def compare_to_expected(checks: list[Check]) -> dict:
    """Each check against the original's output with its tolerance (assert_close's rule: |a - e| <= atol +
    rtol |e|, elementwise, same shape, finite)."""
    import torch

    tensors, passed = {}, True
    for check in checks:
        actual, reference = check.actual, check.expected
        same_shape = tuple(actual.shape) == tuple(reference.shape)
        if check.exact:
            ok = same_shape and torch.equal(actual, reference)
            diff = None if not same_shape else int((actual != reference).sum())
            tensors[check.name] = {"exact": True, "mismatches": diff, "passed": ok}
        else:
            if same_shape:
                a, e = actual.float(), reference.float()
                difference = (a - e).abs()
                ok = bool(torch.isfinite(a).all()) and bool((difference <= check.atol + check.rtol * e.abs()).all())
                diff = float(difference.max()) if difference.numel() else 0.0
            else:
                ok, diff = False, None
            tensors[check.name] = {"max_abs_diff": diff, "atol": check.atol, "rtol": check.rtol, "passed": ok}
        passed = passed and ok
    worst = max((value.get("max_abs_diff") or 0.0 for value in tensors.values()), default=0.0)
    return {"tensors": tensors, "max_abs_diff": worst, "passed": passed}


def compare_low_precision(checks: list[Check], reference: list[Check], bound: float) -> dict:
    """Low-precision outputs against the float32 outputs on the same device: max |diff| / max |fp32| <= bound."""
    import torch

    tensors, passed, worst = {}, True, 0.0
    by_name = {check.name: check for check in reference}
    for check in checks:
        base = by_name[check.name].actual
        if check.exact:
            agree = float((check.actual == base).float().mean()) if check.actual.shape == base.shape else 0.0
            tensors[check.name] = {"exact": True, "agreement": agree, "checked": False}
            continue
        a, b = check.actual.float(), base.float()
        scale = float(b.abs().max()) if b.numel() else 0.0
        diff = float((a - b).abs().max()) if b.numel() else 0.0
        relative = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
        ok = bool(torch.isfinite(a).all()) and relative <= bound
        expected_diff = float((a - check.expected.float()).abs().max()) if a.shape == check.expected.shape else None
        tensors[check.name] = {"max_rel_diff": relative, "max_abs_diff_vs_fp32": diff,
                               "max_abs_diff_vs_expected": expected_diff, "passed": ok}
        passed = passed and ok
        worst = max(worst, relative)
    return {"tensors": tensors, "max_rel_diff": worst, "bound": bound, "passed": passed}


def run_parity(settings: Settings, budget: Budget, report: Report) -> None:
    from conftest import load_case

    from audiozoo.runtime import autocast

    device = settings.device
    bf16 = "bf16" in settings.modes and bf16_supported(device)
    for family in settings.families:
        for name in family.cases:
            base = {"family": family.key, "case": name}
            if not budget.allows("parity_case"):
                report.add("parity", {**base, "status": "skipped", "reason": budget.reason("parity_case")})
                continue
            case_started = time.perf_counter()
            try:
                case = load_case(name)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model, fe = convert_in_memory(case)
                model = model.to(device).eval()
                started = time.perf_counter()
                # eager attention for every case (the dry run: the family's first case; the code path is the same)
                eager = family.attention and (not settings.dry_run or name == family.cases[0])
                attentions = ("sdpa", "eager") if eager else ("sdpa",) if family.attention else (None,)
                reference = None
                for attention in attentions:
                    if attention is not None:
                        model.set_attn_implementation(attention)
                    checks = parity_checks(case, model, fe, device, contextlib.nullcontext)
                    reference = reference or checks
                    result = compare_to_expected(checks)
                    row = report.add("parity", {**base, "dtype": "float32", "attention": attention or "n/a",
                                                "status": "ok", **result})
                    report.say(f"parity {name} float32 {attention or ''}: max abs diff {result['max_abs_diff']:.2e} "
                               f"{'passed' if result['passed'] else 'FAILED'}")
                    if not row["passed"]:
                        failed = [key for key, value in result["tensors"].items() if not value["passed"]]
                        report.fail(f"parity {name} float32 {attention}: {failed}")
                if family.attention:
                    model.set_attn_implementation("sdpa")
                if bf16:
                    bound = bf16_bound(model.config.model_type)
                    checks = parity_checks(case, model, fe, device, lambda: autocast(device, "bfloat16"))
                    result = compare_low_precision(checks, reference, bound)
                    report.add("parity", {**base, "dtype": "bfloat16", "attention": "sdpa" if family.attention
                                          else "n/a", "status": "ok", **result})
                    report.say(f"parity {name} bfloat16: max rel diff {result['max_rel_diff']:.2e} (bound {bound}) "
                               f"{'passed' if result['passed'] else 'FAILED'}")
                    if not result["passed"]:
                        report.fail(f"parity {name} bfloat16: relative difference {result['max_rel_diff']:.3g} > {bound}")
                elif "bf16" in settings.modes:
                    report.add("parity", {**base, "dtype": "bfloat16", "status": "skipped",
                                          "reason": "bfloat16 is not supported on this device"})
                report.say(f"parity {name}: {time.perf_counter() - started:.1f} s")
                del model, fe
            except Exception as error:  # noqa: BLE001 - recorded, and the run goes on
                report.add("parity", {**base, "status": "error", "error": error_line(error)})
                report.fail(f"parity {name}: {error_line(error)}")
                report.say(f"parity {name}: ERROR {error_line(error)}")
                traceback.print_exc()
            free(device)
            budget.observe("parity_case", time.perf_counter() - case_started)


def bf16_bound(model_type: str) -> float:
    """The relative bound of bfloat16 outputs vs float32 that audiozoo.runtime states (per family where it has
    per-family bounds)."""
    from audiozoo import runtime

    if hasattr(runtime, "low_precision_tolerance"):
        return runtime.low_precision_tolerance(model_type, "bfloat16")
    return runtime.LOW_PRECISION_TOLERANCE["bfloat16"]


def bf16_supported(device) -> bool:
    import torch

    return device.type != "cuda" or torch.cuda.is_bf16_supported()


# ---------------------------------------------------------------------------------------------------------------
# Released-size models


VIT_TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}


def released_model(key: str, tiny: bool, device):
    """(model, feature extractor) of the family at its released size (tests/released), random weights, built on
    `device`; `tiny`: the same architecture with 2 layers of width 64 (the dry run)."""
    import torch
    from released import beats as released_beats
    from released import eat_byol_a_frame_mn as released_conv
    from released import timm_vits as released_vits

    import audiozoo as az

    vit = VIT_TINY if tiny else released_vits.VIT_BASE
    beats_tiny = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
                  "patch_embed_dim": 64} if tiny else {}
    multi_label = {"problem_type": "multi_label_classification"}
    if key == "beats":
        fields = released_beats._our_fields({**released_beats.RELEASED_CFG, **released_beats.FINETUNED_CFG})
        config = az.BeatsConfig(**{**fields, **beats_tiny}, num_labels=527, **multi_label)
        model_class, fe = az.BeatsForAudioClassification, az.BeatsFeatureExtractor()
    elif key == "beats-sed":
        fields = released_beats._our_fields(released_beats.RELEASED_CFG)
        config = az.BeatsConfig(**{**fields, **beats_tiny}, sed_head=dict(released_beats.SED_HEAD),
                                num_labels=released_beats.AUDIOSET_STRONG_CLASSES)
        model_class, fe = az.BeatsForAudioFrameClassification, az.BeatsFeatureExtractor()
    elif key == "ast":
        frames = 128 if tiny else 1024  # 1.28 s for the dry run's 1 s clips, else AudioSet's 10.24 s
        config = az.AstConfig(**vit, frequency_stride=10, time_stride=10, max_length=frames, num_labels=527,
                              **multi_label)
        model_class, fe = az.AstForAudioClassification, az.AstFeatureExtractor(max_length=frames)
    elif key == "eat":
        size = VIT_TINY if tiny else released_conv.EAT_BASE
        inputs = {**released_conv.EAT_INPUT, **({"max_length": 128} if tiny else {})}
        config = az.EatConfig(**size, **inputs, num_labels=527, **multi_label)
        model_class, fe = az.EatForAudioClassification, az.EatFeatureExtractor(max_length=inputs["max_length"])
    elif key == "byol-a":
        config = az.ByolAConfig(**released_conv.BYOL_A_V2)
        mean, std = (float(value) for value in released_conv.BYOL_A_V2_STATS)
        model_class, fe = az.ByolAModel, az.ByolAFeatureExtractor(mean=mean, std=std)
    elif key in ("atst-frame", "fpasst", "asit", "m2d"):
        config_class, model_class = {"atst-frame": released_vits.ATST_FRAME, "fpasst": released_vits.FPASST,
                                     "asit": released_vits.ASIT, "m2d": released_vits.M2D}[key]
        fields = {"atst-frame": released_vits.ATST_FRAME_FIELDS, "fpasst": released_vits.FPASST_FIELDS,
                  "asit": released_vits.ASIT_FIELDS, "m2d": released_vits.M2D_FIELDS}[key]
        config = config_class(**vit, **fields, num_labels=released_vits.SED_CLASSES)
        fe = {"atst-frame": az.AtstFrameFeatureExtractor, "fpasst": lambda: az.PasstMelFeatureExtractor(
            periodic_window=True), "asit": az.AsitFeatureExtractor, "m2d": az.M2dFeatureExtractor}[key]()
    elif key == "frame-mn":
        config = az.FrameMnConfig(width_mult=0.4 if tiny else 1.0, num_labels=447, sed_head={"head_type": "linear"})
        model_class, fe = az.FrameMnForAudioFrameClassification, az.PasstMelFeatureExtractor(periodic_window=False)
    else:
        raise ValueError(f"no released-size build for {key!r}")
    with torch.device(device):
        model = model_class(config)
    model = model.to(device).eval()
    sed_head = getattr(model, "sed_head", None)
    if sed_head is not None:  # sparse events, as trained models give (random heads hover at probability 0.5)
        with torch.no_grad():
            for name, module in sed_head.named_modules():
                if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in ("strong_head", "weak_head"):
                    module.bias.fill_(-4.0)
    return model, fe


def first_output(output):
    for name in ("logits", "last_hidden_state"):
        value = getattr(output, name, None)
        if value is not None:
            return value
    return output[0]


def features_for(fe, clips: list, device) -> dict:
    return _on(fe(clips, sampling_rate=fe.sampling_rate, device=device), device)


# ---------------------------------------------------------------------------------------------------------------
# Sections b, c, d, e: released-size passes


def run_released(settings: Settings, budget: Budget, report: Report) -> None:
    """Pass 1, per family: sdpa, throughput in float32 and bf16 (with peak memory), SED. Pass 2: compiled."""
    wanted_throughput = "throughput" in settings.sections
    eager_modes = [mode for mode in settings.modes if mode != "compiled"] if wanted_throughput else []
    families = [family for family in settings.families if family.released]
    for family in settings.families:
        if not family.released:
            note = {"family": family.key, "status": "not_applicable",
                    "reason": "parity only: the BEATs encoder plus a codebook look-up (see beats)"}
            if wanted_throughput:
                report.add("throughput", dict(note))
            if "sdpa" in settings.sections:
                report.add("sdpa", dict(note))
    for family in families:
        wants_sdpa = "sdpa" in settings.sections and family.attention
        wants_sed = "sed" in settings.sections and family.sed
        if not (wants_sdpa or eager_modes or wants_sed):
            continue
        started = time.perf_counter()
        if not budget.allows("build"):
            skip_family(family, settings, report, budget.reason("build"), wants_sdpa, eager_modes, wants_sed)
            continue
        try:
            with budget.measure("build"):
                model, fe = released_model(family.key, settings.dry_run, settings.device)
        except Exception as error:  # noqa: BLE001
            report.fail(f"build {family.key}: {error_line(error)}")
            skip_family(family, settings, report, f"build failed: {error_line(error)}", wants_sdpa, eager_modes,
                        wants_sed, status="error")
            traceback.print_exc()
            continue
        report.say(f"built {family.key} ({'tiny' if settings.dry_run else 'released size'}) on {settings.device}")
        clips = clip_pool(max(settings.batches + (settings.sdpa_batch,)), settings.clip_seconds, fe.sampling_rate)
        if wants_sdpa:
            guarded(report, "sdpa", {"family": family.key, "batch": settings.sdpa_batch}, budget, "sdpa",
                    partial(sdpa_cell, model, fe, clips, settings))
        if eager_modes:
            guarded(report, "throughput", {"family": family.key, "batch": max(settings.batches), "kind": "front end"},
                    budget, "frontend", partial(frontend_cell, fe, clips, settings), key="frontend")
            for mode in eager_modes:
                for batch in settings.batches:
                    base = {"family": family.key, "mode": mode, "batch": batch}
                    if mode == "bf16" and not bf16_supported(settings.device):
                        report.add("throughput", {**base, "status": "skipped", "reason": "no bfloat16 on this device"})
                        continue
                    guarded(report, "throughput", base, budget, "cell",
                            partial(throughput_cell, model, fe, clips[:batch], mode, settings))
        if wants_sed:
            for dtype in ("float32", "bfloat16"):
                base = {"family": family.key, "dtype": dtype}
                if dtype == "bfloat16" and not bf16_supported(settings.device):
                    report.add("sed", {**base, "status": "skipped", "reason": "no bfloat16 on this device"})
                    continue
                guarded(report, "sed", base, budget, "sed", partial(sed_cell, family.key, model, fe, dtype, settings))
            add_sed_difference(report, family.key)
        model = fe = None  # dropped before the next family is built
        free(settings.device)
        report.say(f"{family.key}: {time.perf_counter() - started:.1f} s")
    if wanted_throughput and "compiled" in settings.modes:
        run_compiled(families, settings, budget, report)


def skip_family(family, settings, report, reason, wants_sdpa, eager_modes, wants_sed, status="skipped") -> None:
    if wants_sdpa:
        report.add("sdpa", {"family": family.key, "batch": settings.sdpa_batch, "status": status, "reason": reason})
    for mode in eager_modes:
        for batch in settings.batches:
            report.add("throughput", {"family": family.key, "mode": mode, "batch": batch, "status": status,
                                      "reason": reason})
    if wants_sed:
        for dtype in ("float32", "bfloat16"):
            report.add("sed", {"family": family.key, "dtype": dtype, "status": status, "reason": reason})


def guarded(report: Report, section: str, base: dict, budget: Budget, unit: str, run: Callable[[], dict],
            key: str = "rows") -> dict:
    """Run one unit if the budget allows; its row (ok / skipped / error) is added to the section."""
    label = " ".join(str(value) for value in base.values())
    if not budget.allows(unit):
        report.say(f"{section} {label}: skipped ({budget.reason(unit)})")
        return report.add(section, {**base, "status": "skipped", "reason": budget.reason(unit)}, key)
    try:
        with budget.measure(unit):
            fields = run()
    except Exception as error:  # noqa: BLE001 - recorded (an out-of-memory error too), and the run goes on
        report.fail(f"{section} {label}: {error_line(error)}")
        report.say(f"{section} {label}: ERROR {error_line(error)}")
        traceback.print_exc()
        return report.add(section, {**base, "status": "error", "error": error_line(error)}, key)
    row = report.add(section, {**base, "status": "ok", **fields}, key)
    report.say(f"{section} {label}: " + ", ".join(f"{name} {value}" for name, value in fields.items()
                                                   if name in SUMMARY_FIELDS))
    return row


SUMMARY_FIELDS = ("clips_per_s", "compile_s", "peak_mb", "speedup_sdpa", "max_abs_diff", "seconds",
                  "real_time_factor", "events", "fallback")


def sdpa_cell(model, fe, clips, settings: Settings) -> dict:
    import torch

    features = features_for(fe, clips[: settings.sdpa_batch], settings.device)
    result = {}
    outputs = {}
    for attention in ("eager", "sdpa"):
        model.set_attn_implementation(attention)
        with torch.inference_mode(), PeakMemory(settings.device) as peak:
            seconds, _, output = timed(partial(model, **features), settings)
        outputs[attention] = first_output(output).float().cpu()
        result[f"{attention}_s"] = round(seconds, 5)
        result[f"{attention}_peak_mb"] = peak.fields()["peak_mb"]
    model.set_attn_implementation("sdpa")
    difference = float((outputs["eager"] - outputs["sdpa"]).abs().max())
    scale = float(outputs["eager"].abs().max())
    result.update(max_abs_diff=float(f"{difference:.3g}"), max_rel_diff=float(f"{difference / max(scale, 1e-30):.3g}"),
                  speedup_sdpa=round(result["eager_s"] / result["sdpa_s"], 2), output_shape=list(outputs["sdpa"].shape))
    return result


def frontend_cell(fe, clips, settings: Settings) -> dict:
    batch = max(settings.batches)
    seconds, _, _ = timed(partial(features_for, fe, clips[:batch], settings.device), settings)
    return {"seconds": round(seconds, 5), "clips_per_s": round(batch / seconds, 1), "dtype": "float32"}


def throughput_cell(model, fe, clips, mode: str, settings: Settings) -> dict:
    import torch

    from audiozoo.runtime import autocast

    features = features_for(fe, clips, settings.device)
    dtype = "bfloat16" if mode == "bf16" else "float32"

    def forward():
        with autocast(settings.device, dtype):
            return model(**features)

    with torch.inference_mode(), PeakMemory(settings.device) as peak:
        seconds, _, _ = timed(forward, settings)
    return {"seconds": round(seconds, 5), "clips_per_s": round(len(clips) / seconds, 1), **peak.fields()}


def sed_cell(key: str, model, fe, dtype: str, settings: Settings) -> dict:
    import numpy as np
    from transformers import pipeline

    rate = fe.sampling_rate
    audio = recording(settings.sed_seconds, rate)
    options = {"sampling_rate": rate, "chunk_batch_size": settings.sed_chunk_batch, "return_frame_probabilities": True,
               "autocast_dtype": None if dtype == "float32" else dtype}
    devices: set[str] = set()
    original_class = type(fe)

    class FrontEndProbe(original_class):
        """The same feature extractor, noting where the pipeline's front end computes its features."""

        def __call__(self, *args, **kwargs):
            features = super().__call__(*args, **kwargs)
            devices.add(str(features["input_values"].device))
            return features

    fe.__class__ = FrontEndProbe
    try:
        detector = pipeline("sound-event-detection", model=model, feature_extractor=fe, device=settings.device)
        detector(audio[: int(2 * settings.clip_seconds * rate) if settings.dry_run else 20 * rate], **options)  # warm-up
        with PeakMemory(settings.device) as peak:
            synchronize(settings.device)
            start = time.perf_counter()
            result = detector(audio, **options)
            synchronize(settings.device)
            seconds = time.perf_counter() - start
    finally:
        fe.__class__ = original_class
    SED_FRAMES[(key, dtype)] = np.asarray(result["frame_probabilities"])
    duration = audio.size / rate
    return {"audio_s": duration, "seconds": round(seconds, 3), "real_time_factor": round(duration / seconds, 1),
            "events": len(result["events"]), "chunk_batch_size": settings.sed_chunk_batch,
            "front_end_device": ", ".join(sorted(devices)), **peak.fields()}


SED_FRAMES: dict = {}


def add_sed_difference(report: Report, key: str) -> None:
    """max |bf16 - fp32| of the frame probabilities of the same audio, on the bfloat16 row."""
    rows = {row["dtype"]: row for row in report.sections["sed"]["rows"] if row["family"] == key and row["status"] == "ok"}
    first, second = SED_FRAMES.get((key, "float32")), SED_FRAMES.get((key, "bfloat16"))
    if "bfloat16" in rows and first is not None and second is not None and first.shape == second.shape:
        rows["bfloat16"]["max_abs_diff_vs_fp32"] = float(f"{float(abs(first - second).max()):.3g}")
    SED_FRAMES.clear()


def run_compiled(families, settings: Settings, budget: Budget, report: Report) -> None:
    """Compiled cells: for every family the batches > 1 (batch marked dynamic: one graph) first, then batch 1 (a
    second graph: torch specialises size 1); each family is built afresh and torch._dynamo is reset after it. The
    dry run compiles batch 1 for the first family only (the same code path; a compile costs seconds on a CPU)."""
    batches = sorted(settings.batches)
    shared = [batch for batch in batches if batch > 1]
    single = [batch for batch in batches if batch == 1]
    for group in (shared, single):
        if not group:
            continue
        for index, family in enumerate(families):
            base = [{"family": family.key, "mode": "compiled", "batch": batch} for batch in group]
            if settings.dry_run and group == single and index > 0:
                for row in base:
                    report.add("throughput", {**row, "status": "skipped",
                                              "reason": "dry run: batch 1 is compiled for the first family only"})
                continue
            if not budget.allows("compile"):
                for row in base:
                    report.add("throughput", {**row, "status": "skipped", "reason": budget.reason("compile")})
                report.say(f"compiled {family.key} {group}: skipped ({budget.reason('compile')})")
                continue
            with budget.measure("compile"):
                compiled_group(family, group, settings, report)


def compiled_group(family: Family, group: list[int], settings: Settings, report: Report) -> None:
    import torch

    from audiozoo.runtime import compile_model, is_compiled

    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - private API
        counters = None
    torch._dynamo.reset()
    if counters is not None:
        counters.clear()
    model = fe = None
    try:
        model, fe = released_model(family.key, settings.dry_run, settings.device)
        clips = clip_pool(max(group), settings.clip_seconds, fe.sampling_rate)
        compile_model(model, backend=settings.compile_backend)
        for batch in group:
            row = {"family": family.key, "mode": "compiled", "batch": batch}
            try:
                features = features_for(fe, clips[:batch], settings.device)
                if batch > 1:  # one graph for every batch size > 1 (no recompilation between 8 and 32)
                    for value in features.values():
                        torch._dynamo.mark_dynamic(value, 0)
                with warnings.catch_warnings(record=True) as caught, torch.inference_mode(), \
                        PeakMemory(settings.device) as peak:
                    warnings.simplefilter("always")
                    seconds, first, _ = timed(partial(model, **features), settings)
                fallback = [str(warning.message) for warning in caught
                            if issubclass(warning.category, RuntimeWarning) and "torch.compile" in str(warning.message)]
                fields = {"seconds": round(seconds, 5), "clips_per_s": round(batch / seconds, 1),
                          "first_call_s": round(first, 3), "compile_s": round(max(first - seconds, 0.0), 2),
                          "compiled": is_compiled(model), "backend": settings.compile_backend or "inductor",
                          **peak.fields()}
                if fallback:  # eager numbers under a compiled label would mislead: recorded, and the run fails
                    fields["fallback"] = fallback[0][:300]
                    report.fail(f"compiled {family.key} {batch}: fell back to eager ({fallback[0][:200]})")
                if counters is not None:
                    fields["graphs"] = int(counters["stats"].get("unique_graphs", 0))
                    fields["graph_breaks"] = int(sum(counters["graph_break"].values()))
                report.add("throughput", {**row, "status": "ok", **fields})
                report.say(f"throughput {family.key} compiled {batch}: clips_per_s {fields['clips_per_s']}, "
                           f"compile_s {fields['compile_s']}, graphs {fields.get('graphs')}"
                           + (f", FALLBACK {fields['fallback']}" if fallback else ""))
            except Exception as error:  # noqa: BLE001
                report.add("throughput", {**row, "status": "error", "error": error_line(error)})
                report.fail(f"compiled {family.key} {batch}: {error_line(error)}")
                traceback.print_exc()
    except Exception as error:  # noqa: BLE001
        for batch in group:
            report.add("throughput", {"family": family.key, "mode": "compiled", "batch": batch, "status": "error",
                                      "error": error_line(error)})
        report.fail(f"compiled {family.key}: {error_line(error)}")
        traceback.print_exc()
    finally:
        model = fe = None
        torch._dynamo.reset()
        free(settings.device)


# ---------------------------------------------------------------------------------------------------------------
# Output


def memory_rows(report: Report) -> None:
    for row in report.sections["throughput"]["rows"]:
        if row.get("status") == "ok" and "mode" in row:
            report.add("memory", {key: row.get(key) for key in ("family", "mode", "batch", "peak_mb",
                                                                  "peak_above_start_mb")})


def _cell(row: dict | None, field_name: str, fmt: str = "{}") -> str:
    if row is None:
        return "-"
    if row.get("status") == "skipped":
        return "skipped"
    if row.get("status") == "error":
        return "error"
    value = row.get(field_name)
    return "n/a" if value is None else fmt.format(value)


def markdown(result: dict) -> str:
    env, settings, sections = result["environment"], result["settings"], result["sections"]
    kind = "DRY RUN (tiny configs, 1 s clips)" if settings["dry_run"] else "released sizes, random weights, 10 s clips"
    lines = [f"# bench/gpu.sh on {env.get('device_name')} ({settings['device']})", "",
             (f"torch {env['torch']} (CUDA {env.get('torch_cuda')}), transformers {env['transformers']}, commit "
              f"{(env.get('git_commit') or '?')[:10]}; {kind}; float32 without TF32, cudnn.benchmark off; "
              f"{result['wall_seconds']:.0f} s (budget {settings['time_budget_s']:.0f} s); memory: {env['memory']}"),
             ""]

    parity = sections["parity"]["rows"]
    if parity:
        lines += ["## Parity (tiny cases, on the device)", "",
                  "| family | case | fp32 SDPA max abs diff | fp32 eager max abs diff | bf16 max rel diff (bound) | passed |",
                  "| --- | --- | --- | --- | --- | --- |"]
        cases = list(dict.fromkeys((row["family"], row["case"]) for row in parity))
        for family, case in cases:
            rows = [row for row in parity if row["case"] == case]
            pick = {(row.get("dtype"), row.get("attention")): row for row in rows}
            sdpa = pick.get(("float32", "sdpa")) or pick.get(("float32", "n/a"))
            eager = pick.get(("float32", "eager"))
            low = next((row for row in rows if row.get("dtype") == "bfloat16"), None)
            status = [row for row in rows if row.get("status") == "ok"]
            passed = "skipped" if not status and rows[0].get("status") == "skipped" else (
                "error" if any(row.get("status") == "error" for row in rows) else
                ("yes" if all(row["passed"] for row in status) else "**NO**"))
            bound = f" ({low['bound']})" if low and low.get("status") == "ok" else ""
            no_eager = ("skipped" if sdpa is None or sdpa.get("status") != "ok" else "not run (dry run)"
                        if FAMILY_BY_KEY[family].attention else "n/a (no attention)")
            lines.append(f"| {family} | {case} | {_cell(sdpa, 'max_abs_diff', '{:.1e}')} | "
                         f"{_cell(eager, 'max_abs_diff', '{:.1e}') if eager else no_eager} | "
                         f"{_cell(low, 'max_rel_diff', '{:.1e}')}{bound} | {passed} |")
        lines.append("")

    sdpa_rows = [row for row in sections["sdpa"]["rows"] if "batch" in row]
    if sdpa_rows:
        lines += [f"## Eager vs SDPA (float32, batch {settings['sdpa_batch']}, {settings['clip_seconds']:g} s clips)", "",
                  "| family | eager ms | SDPA ms | speed-up | max abs diff | max rel diff | eager peak MiB | SDPA peak MiB |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in sdpa_rows:
            ms = "{:.1f}"
            lines.append(f"| {row['family']} | {_cell(row, 'eager_s', '{}') if row.get('status') != 'ok' else ms.format(row['eager_s'] * 1e3)} | "
                         f"{_cell(row, 'sdpa_s') if row.get('status') != 'ok' else ms.format(row['sdpa_s'] * 1e3)} | "
                         f"{_cell(row, 'speedup_sdpa', '{}x')} | {_cell(row, 'max_abs_diff', '{:.1e}')} | "
                         f"{_cell(row, 'max_rel_diff', '{:.1e}')} | {_cell(row, 'eager_peak_mb')} | "
                         f"{_cell(row, 'sdpa_peak_mb')} |")
        lines.append("")

    throughput = [row for row in sections["throughput"]["rows"] if "mode" in row]
    frontend = {row["family"]: row for row in sections["throughput"]["frontend"]}
    if throughput:
        batches = settings["batches"]
        lines += [(f"## Throughput (model clips/s, {settings['clip_seconds']:g} s clips; front end excluded, its own "
                   "clips/s at the largest batch in the last column)"), "",
                  "| family | mode | " + " | ".join(f"batch {batch}" for batch in batches)
                  + " | compile s | front end clips/s |",
                  "| --- | --- | " + " | ".join("---" for _ in batches) + " | --- | --- |"]
        for family in dict.fromkeys(row["family"] for row in throughput):
            for mode in ("fp32", "bf16", "compiled"):
                rows = {row["batch"]: row for row in throughput if row["family"] == family and row["mode"] == mode}
                if not rows:
                    continue
                cells = []
                for batch in batches:
                    row = rows.get(batch)
                    text = _cell(row, "clips_per_s", "{:.1f}")
                    if row is not None and row.get("fallback"):
                        text += " (eager fall-back)"
                    cells.append(text)
                compile_s = ", ".join(f"b{batch} {rows[batch]['compile_s']:.1f}" for batch in sorted(rows)
                                      if rows[batch].get("status") == "ok" and "compile_s" in rows[batch]) or "-"
                front = _cell(frontend.get(family), "clips_per_s", "{:.0f}") if mode == "fp32" else ""
                lines.append(f"| {family} | {mode} | " + " | ".join(cells) + f" | {compile_s if mode == 'compiled' else ''} | {front} |")
        skipped = [row for row in sections["throughput"]["rows"] if "mode" not in row]
        for row in skipped:
            lines.append(f"| {row['family']} | - | {row.get('reason', '')} |")
        lines.append("")

    memory = sections["memory"]["rows"]
    if memory:
        batches = settings["batches"]
        lines += ["## Peak memory (MiB; " + env["memory"] + ")", "",
                  "| family | mode | " + " | ".join(f"batch {batch}" for batch in batches) + " |",
                  "| --- | --- | " + " | ".join("---" for _ in batches) + " |"]
        for family in dict.fromkeys(row["family"] for row in memory):
            for mode in ("fp32", "bf16", "compiled"):
                rows = {row["batch"]: row for row in memory if row["family"] == family and row["mode"] == mode}
                if rows:
                    cells = [("n/a" if rows.get(batch, {}).get("peak_mb") is None else
                              f"{rows[batch]['peak_mb']:.0f} ({round(rows[batch]['peak_above_start_mb']):+d})")
                             if batch in rows else "-" for batch in batches]
                    lines.append(f"| {family} | {mode} | " + " | ".join(cells) + " |")
        lines += ["", "(+N: above what was allocated when the cell started, i.e. activations and workspace)", ""]

    sed = sections["sed"]["rows"]
    if sed:
        length = (f"{settings['sed_seconds'] / 60:g} min" if settings["sed_seconds"] >= 60
                  else f"{settings['sed_seconds']:g} s")
        lines += [(f"## Sound-event detection ({length} of real audio, chunk_batch_size "
                   f"{settings['sed_chunk_batch_size']})"), "",
                  "| family | dtype | seconds | x real time | events | max abs diff vs fp32 | peak MiB | front end on |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in sed:
            lines.append(f"| {row['family']} | {row['dtype']} | {_cell(row, 'seconds', '{:.2f}')} | "
                         f"{_cell(row, 'real_time_factor', '{:.0f}')} | {_cell(row, 'events')} | "
                         f"{row.get('max_abs_diff_vs_fp32', '-') if row.get('status') == 'ok' else '-'} | "
                         f"{_cell(row, 'peak_mb', '{:.0f}')} | {_cell(row, 'front_end_device')} |")
        lines.append("")

    skipped = sum(1 for section in sections.values() for row in section.get("rows", [])
                  if row.get("status") == "skipped")
    lines.append(f"Skipped units: {skipped}. Failures: {len(result['failures'])}"
                 + ("" if not result["failures"] else ": " + "; ".join(result["failures"][:10])))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Command line


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/gpu.sh", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument("--output", default=str(REPO / "out" / "gpu_bench"),
                        help="folder for gpu_bench.json and gpu_bench.md (default out/gpu_bench in the repo)")
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny configs, 1 s clips, batches 1/2/3, one timed call, 20 s of SED audio, compile "
                             "backend 'eager': every code path in under a minute on a CPU")
    parser.add_argument("--families", default=",".join(family.key for family in FAMILIES),
                        help="comma-separated subset of: " + ", ".join(family.key for family in FAMILIES))
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated subset of: " + ", ".join(SECTIONS)
                             + " (peak memory comes with throughput)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="throughput modes (and bf16 parity): comma-separated subset of " + ", ".join(MODES))
    parser.add_argument("--time-budget", type=float, default=None,
                        help=f"seconds from the start after which no further unit starts (default {DEFAULT_BUDGET_S:g};"
                             " dry run 600)")
    args = parser.parse_args(argv)
    for name, allowed in (("families", FAMILY_BY_KEY), ("sections", SECTIONS), ("modes", MODES)):
        values = [value.strip() for value in getattr(args, name).split(",") if value.strip()]
        unknown = [value for value in values if value not in allowed]
        if unknown or not values:
            parser.error(f"--{name}: unknown {unknown or 'empty list'}; choose from {', '.join(allowed)}")
        setattr(args, name, tuple(values))
    return args


def settings_from(args, device) -> Settings:
    dry = args.dry_run
    return Settings(
        device=device, dry_run=dry, clip_seconds=1.0 if dry else 10.0, batches=(1, 2, 3) if dry else (1, 8, 32),
        sdpa_batch=2 if dry else 8, sed_seconds=20.0 if dry else 600.0, sed_chunk_batch=2 if dry else 32,
        warm_up=1 if dry else 2, min_repeats=1 if dry else 3, max_repeats=1 if dry else 20,
        min_time_s=0.0 if dry else 0.5, compile_backend="eager" if dry else None,
        families=tuple(family for family in FAMILIES if family.key in args.families),
        sections=tuple(section for section in SECTIONS if section in args.sections),
        modes=tuple(mode for mode in MODES if mode in args.modes),
        budget_s=args.time_budget if args.time_budget is not None else (600.0 if dry else DEFAULT_BUDGET_S),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    import torch

    from audiozoo.runtime import DeviceUnavailableError, check_device

    kind = str(args.device).partition(":")[0]
    try:
        if kind not in ("cpu", "cuda"):
            raise DeviceUnavailableError(f"device {args.device}: bench/gpu.sh runs on cuda, cuda:N or cpu")
        check_device(args.device)
    except (DeviceUnavailableError, ValueError) as error:
        print(f"bench/gpu.sh: {error}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", device.index if device.index is not None else torch.cuda.current_device())
        torch.cuda.set_device(device)
    sys.path.insert(0, str(TESTS))
    import conftest  # noqa: F401
    from released import beats, eat_byol_a_frame_mn, timm_vits  # noqa: F401

    import audiozoo  # noqa: F401  (registers the families and the pipelines)

    gc.collect()
    gc.freeze()  # what the imports made is never collected: later collections only walk what the run makes
    warnings.filterwarnings("ignore", message=".*(TypedStorage|sampling_rate|was called without).*")
    settings = settings_from(args, device)
    if settings.dry_run and device.type == "cpu":
        # tiny models gain nothing from more threads, and on a busy machine each parallel region waits for its
        # slowest (descheduled) thread: one thread keeps the dry run at seconds (tests/conftest.py one_thread)
        torch.set_num_threads(1)
    budget = Budget(settings.budget_s, ESTIMATES["cuda" if device.type == "cuda" else "cpu"])
    report = Report()
    flags = set_precision_flags(device)
    env = environment(settings, flags)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    Report.say(f"{env['device_name']} ({device}); torch {env['torch']}; {settings.describe()['weights']}; "
               f"budget {settings.budget_s:.0f} s")
    try:
        if "parity" in settings.sections:
            started = time.perf_counter()
            run_parity(settings, budget, report)
            report.section_seconds["parity"] = round(time.perf_counter() - started, 1)
        if any(section in settings.sections for section in ("sdpa", "throughput", "sed")):
            started = time.perf_counter()
            run_released(settings, budget, report)
            report.section_seconds["sdpa+throughput+sed"] = round(time.perf_counter() - started, 1)
    except KeyboardInterrupt:
        report.fail("interrupted")
    finally:
        memory_rows(report)
        result = {
            "benchmark": "bench/gpu.sh", "arguments": sys.argv[1:] if argv is None else list(argv),
            "environment": env, "settings": settings.describe(),
            "release_names": {key: value for key, value in RELEASE_NAMES.items()
                              if key in [family.key for family in settings.families]},
            "sections": report.sections, "section_seconds": report.section_seconds,
            "failures": report.failures, "wall_seconds": round(time.perf_counter() - START, 1),
        }
        table = markdown(result)
        (output / "gpu_bench.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        (output / "gpu_bench.md").write_text(table)
        print()
        print(table, flush=True)
        print(f"wrote {output / 'gpu_bench.json'} and {output / 'gpu_bench.md'}", flush=True)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
