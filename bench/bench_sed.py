"""Sound-event detection on real audio: our pipeline vs the original inference loop (one window at a time).

    python bench/bench_sed.py [--case sed_atstf_tiny] [--minutes 10] [--chunk-batch-size 16] [--repeats 2]
    python bench/bench_sed.py --size released [--family ATST-F fpasst ASIT M2D BEATs frame_mn06 frame_mn10]
                              [--minutes 10] [--repeats 3]

`--size tiny` (default): the model is a parity case converted with `audiozoo convert pretrained_sed` (tiny widths,
released architecture otherwise). `--size released`: per family, the released student at its full size (ViT-B
encoders, frame-MobileNet at its width, the 447-class linear strong and weak heads) with seeded random weights,
written in the original file layout (tests/released), converted with `audiozoo convert pretrained_sed` into a
temporary folder and loaded from there, as a user loads a converted release.

The baseline is the original inference script (PretrainedSED inference.py) as far as it runs here: every 10 s window
(the last zero-padded) goes through the front end and the model on its own, then concatenation, scipy's median
filter (as the original) and the same thresholding, with the attention the original model computes: eager
(q k^T, softmax, @ v) for ATST-F, ASiT and BEATs, `F.scaled_dot_product_attention` for fPaSST (its own Attention)
and M2D (timm's fused attention), q, k and v from one GEMM as timm's fused `qkv` layer (ATST-F, fPaSST, ASiT, M2D),
BEATs' whole score matrix and position bias at once (`as_original_attention`); frame-MobileNet has none; linear
layers through torch's `F.linear` (MKL's sgemm). Ours is `pipeline("sound-event-detection")` with its defaults:
SDPA attention, windows batched per `chunk_batch_size` (its default unless given), linear layers through oneDNN on
x86 CPUs (`--mkl-linear`: through torch's `F.linear` as before, to see what that part gives), streamed median filter
and event extraction. Both start from the decoded 16 kHz waveform and run in float32. The two paths alternate
within each repeat (the machine may be shared); prints the best and the median time of each, their ratio, the max
abs difference of the frame probabilities and whether the events are the same (random weights put most frame
probabilities near 0.5, so a few frames may fall on the other side of the threshold; the line then says how many
and how close to it they are). `--profile` adds one timed run of each path split into front end, encoder, head,
median filter, event extraction and glue.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import median_filter
from transformers import pipeline

import audiozoo  # noqa: F401  (registers the models and the pipeline)
from audiozoo.audio.io import load_audio
from audiozoo.conversion.pretrained_sed import convert_and_save
from audiozoo.sed.postprocessing import probabilities_to_events

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "fixtures" / "parity"
MODEL_NAMES = {"sed_atstf_tiny": ("ATST-F", 4), "sed_frame_mn06": ("frame_mn06", None),
               "sed_fpasst_tiny": ("fpasst", 4), "sed_beats_tiny": ("BEATs", None)}
# the released students (tests/released: the release whose file `audiozoo convert pretrained_sed` reads)
RELEASES = {"ATST-F": "pretrainedsed-atst-frame-strong", "fpasst": "pretrainedsed-fpasst-strong",
            "ASIT": "pretrainedsed-asit-strong", "M2D": "pretrainedsed-m2d-strong",
            "BEATs": "pretrainedsed-beats-sed-strong", "frame_mn06": "pretrainedsed-frame-mn06-strong",
            "frame_mn10": "pretrainedsed-frame-mn10-strong"}
# the attention the original model computes (PretrainedSED @ 1aa47e48): ATST-F models/atstframe/transformer.py and
# ASiT models/asit/vision_transformer.py `(q @ k.transpose(-2, -1)) * scale`, softmax; BEATs backbone.py torch.bmm +
# softmax; fPaSST models/frame_passt/fpasst.py F.scaled_dot_product_attention; M2D timm's VisionTransformer (timm
# unpinned; fused attention = F.scaled_dot_product_attention since timm 0.9); frame-MobileNet: no attention
ORIGINAL_ATTENTION = {"ATST-F": "eager", "ASIT": "eager", "BEATs": "eager", "fpasst": "sdpa", "M2D": "sdpa",
                      "frame_mn06": None, "frame_mn10": None}


def as_original_attention(model: torch.nn.Module, kernel: str) -> list[str]:
    """Give `model`'s attention layers the original's computation, and say what changed.

    timm-style layers (ATST-F, fPaSST, ASiT, M2D): ONE q/k/v projection (timm's fused `qkv` Linear: the original
    computes q, k and v in one GEMM, the port in three), then `(q @ k^T) * scale`, softmax, `@ v` ("eager": ATST-F,
    ASiT) or `F.scaled_dot_product_attention` ("sdpa": fPaSST, M2D), then the projection. BEATs (separate q/k/v
    projections in the original too; eager): the whole [B, H, L, L] scores and gated position bias at once, as the
    original's `torch.bmm`, not the port's blocks of query rows."""
    from audiozoo.layers.vit import ViTSelfAttention
    from audiozoo.models.beats.modeling_beats import BeatsSelfAttention

    changes = []
    for module in model.modules():
        if isinstance(module, ViTSelfAttention) and not module.fused_qkv:
            module.forward = original_attention_forward(module, kernel)
            changes.append("one q/k/v GEMM")
        elif isinstance(module, BeatsSelfAttention):
            module.QUERY_BLOCK_ELEMENTS = {"cpu": sys.maxsize, "default": sys.maxsize}  # one block: all query rows
            changes.append("whole score matrix")
    return sorted(set(changes))


def original_attention_forward(attention, kernel: str):
    projections = (attention.q_proj, attention.k_proj, attention.v_proj)
    weight = torch.cat([projection.weight.detach() for projection in projections])
    bias = None if projections[0].bias is None else torch.cat([projection.bias.detach() for projection in projections])
    heads, scale = attention.num_heads, attention.scaling

    def forward(hidden_states, key_mask=None, output_attentions=False):
        batch, length, channels = hidden_states.shape
        qkv = F.linear(hidden_states, weight, bias).reshape(batch, length, 3, heads, channels // heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)
        if kernel == "eager":
            attended = ((query @ key.transpose(-2, -1)) * scale).softmax(dim=-1) @ value
        else:
            attended = F.scaled_dot_product_attention(query, key, value, scale=scale)
        return attention.out_proj(attended.transpose(1, 2).reshape(batch, length, channels)), None

    return forward


def recording(minutes: float) -> np.ndarray:
    """Real audio: the two shared 10 s clips (and reversed copies) tiled to `minutes`, at 16 kHz."""
    clips = [load_audio(path, sampling_rate=16000)[0]
             for path in sorted((REPO.parent / "shared" / "audio").glob("*.wav"))]
    if not clips:
        clips = [load_audio(REPO / "examples" / "audio" / "clip_a_16k_4s.wav", sampling_rate=16000)[0]]
    pieces = clips + [clip[::-1].copy() for clip in clips]
    samples = int(minutes * 60 * 16000)
    tiled = np.concatenate(pieces * (samples // sum(p.size for p in pieces) + 1))
    return tiled[:samples].astype(np.float32)


def one_window_at_a_time(detector, waveform: np.ndarray, stages: Stages | None = None) -> tuple[np.ndarray, list]:
    """The original inference loop: front end + model per 10 s window, then concatenate and post-process."""
    model, extractor = detector.model, detector.feature_extractor
    stage = stages.stage if stages is not None else lambda name: contextlib.nullcontext()
    window = 160000
    count = math.ceil(waveform.size / window)
    padded = np.zeros(count * window, dtype=np.float32)
    padded[: waveform.size] = waveform
    chunks = []
    with torch.no_grad():  # as the original
        for index in range(count):
            with stage("front end"):
                features = extractor(padded[index * window:(index + 1) * window], sampling_rate=16000)
            with stage("model"):
                chunks.append(model(**features).probabilities[0])
    frames = torch.cat(chunks).numpy()[: math.ceil(waveform.size / 16000 * 25)]
    with stage("median filter"):
        smoothed = median_filter(frames, size=(9, 1))  # the original's post-processing (scipy)
    labels = [model.config.id2label[i] for i in range(frames.shape[1])]
    with stage("events"):
        events = probabilities_to_events(smoothed, labels, 0.04, 0.5, waveform.size / 16000)
    return smoothed, events


class Stages:
    """Wall time per stage of a run: front end, encoder, head, the rest of the model's forward, median filter,
    event extraction; what the run takes beyond them is glue (windowing, copies, concatenation, conversions)."""

    ORDER = ("front end", "encoder", "head", "model other", "median filter", "events", "glue")

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    @contextlib.contextmanager
    def model_hooks(self, model):
        """Times the encoder and the head inside every forward pass of `model`."""
        starts = {}

        def before(name):
            return lambda module, args: starts.__setitem__(name, time.perf_counter())

        def after(name):
            def hook(module, args, output):
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - starts.pop(name)
            return hook

        modules = {"encoder": getattr(model, model.base_model_prefix), "head": model.sed_head}
        handles = [hook for name, module in modules.items() for hook in
                   (module.register_forward_pre_hook(before(name)), module.register_forward_hook(after(name)))]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def table(self, total: float) -> str:
        parts = dict(self.seconds)
        model = parts.pop("model", None)
        if model is not None:
            parts["model other"] = model - parts.get("encoder", 0.0) - parts.get("head", 0.0)
        parts["glue"] = total - sum(parts.values())
        return " | ".join(f"{name} {parts[name]:6.2f} s ({100 * parts[name] / total:4.1f}%)"
                          for name in self.ORDER if name in parts) + f" | total {total:6.2f} s"


def profile_pipeline(detector, waveform: np.ndarray, chunk_batch_size: int | None) -> str:
    """One pipeline run with the stages timed (timers wrap the feature extractor, the model's encoder and head,
    and the post-processing streams)."""
    stages = Stages()
    module = sys.modules[type(detector).__module__]
    streams = {name: getattr(module, name) for name in ("MedianFilterStream", "EventStream")}

    def timed(cls, stage):
        class Timed(cls):
            def push(self, *args, **kwargs):
                with stages.stage(stage):
                    return super().push(*args, **kwargs)

            def finish(self, *args, **kwargs):
                with stages.stage(stage):
                    return super().finish(*args, **kwargs)
        return Timed

    class TimedFrontEnd:
        def __init__(self, extractor):
            self.extractor = extractor

        def __getattr__(self, name):
            return getattr(self.extractor, name)

        def __call__(self, *args, **kwargs):
            with stages.stage("front end"):
                return self.extractor(*args, **kwargs)

    extractor, forward = detector.feature_extractor, detector.model.forward
    options = {} if chunk_batch_size is None else {"chunk_batch_size": chunk_batch_size}
    try:
        module.MedianFilterStream = timed(streams["MedianFilterStream"], "median filter")
        module.EventStream = timed(streams["EventStream"], "events")
        detector.feature_extractor = TimedFrontEnd(extractor)

        def timed_forward(*args, **kwargs):
            with stages.stage("model"):
                return forward(*args, **kwargs)

        detector.model.forward = timed_forward
        with stages.model_hooks(detector.model):
            start = time.perf_counter()
            detector(waveform, sampling_rate=16000, return_frame_probabilities=True, **options)
            total = time.perf_counter() - start
    finally:
        for name, cls in streams.items():
            setattr(module, name, cls)
        detector.feature_extractor = extractor
        del detector.model.forward
    return stages.table(total)


def profile_original(detector, waveform: np.ndarray) -> str:
    stages = Stages()
    with stages.model_hooks(detector.model):
        start = time.perf_counter()
        one_window_at_a_time(detector, waveform, stages)
        total = time.perf_counter() - start
    return stages.table(total)


def convert_released(family: str, folder: Path) -> Path:
    """The released student of `family` at full size, random weights, written as the original file and converted."""
    sys.path.insert(0, str(REPO / "tests"))
    from released import beats, eat_byol_a_frame_mn, timm_vits

    release = {release.name: release for release in beats.RELEASES + timm_vits.RELEASES
               + eat_byol_a_frame_mn.RELEASES}[RELEASES[family]]
    original = folder / release.filename
    torch.save(release.write(release.build()), original)
    gc.collect()
    output = folder / "converted"
    convert_and_save(original, output, family)
    original.unlink()
    return output


def compare(folder: Path, family: str, waveform: np.ndarray, repeats: int, chunk_batch_size: int | None,
            baseline_attention: str | None, profile: bool = False) -> None:
    ours = pipeline("sound-event-detection", model=str(folder), dtype=torch.float32)
    kwargs = {} if baseline_attention is None else {"attn_implementation": baseline_attention}
    original = pipeline("sound-event-detection", model=str(folder), dtype=torch.float32, model_kwargs=kwargs)
    changes = as_original_attention(original.model, baseline_attention) if baseline_attention else []
    batch = chunk_batch_size
    print(f"{family}: {sum(p.numel() for p in ours.model.parameters()) / 1e6:.1f} M parameters; "
          f"{waveform.size / 16000 / 60:g} min of real audio ({math.ceil(waveform.size / 160000)} windows of 10 s); "
          f"threads={torch.get_num_threads()}; original loop: attention {baseline_attention or 'none'}"
          f"{''.join(f', {change}' for change in changes)}; pipeline: attention "
          f"{ours.model.config._attn_implementation if baseline_attention else 'none'}, chunk_batch_size "
          f"{batch or 'default'}", flush=True)

    def batched():
        options = {} if batch is None else {"chunk_batch_size": batch}
        return ours(waveform, sampling_rate=16000, return_frame_probabilities=True, **options)

    one_window_at_a_time(original, waveform[: 160000 * 2])  # warm-up of both
    ours(waveform[: 160000 * 2], sampling_rate=16000)
    times: dict[str, list[tuple[float, float]]] = {"baseline": [], "ours": []}
    for _ in range(repeats):  # alternated, so that load from other processes hits both alike
        for name, run in (("baseline", lambda: one_window_at_a_time(original, waveform)), ("ours", batched)):
            wall, cpu = time.perf_counter(), time.process_time()
            output = run()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
            if name == "baseline":
                baseline_probs, baseline_events = output
            else:
                result = output
    probs = result["frame_probabilities"]
    difference = float(np.abs(probs - baseline_probs).max())
    print(f"  original loop (one window at a time): {summary(times['baseline'])}")
    print(f"  pipeline:                             {summary(times['ours'])}")
    base_wall, ours_wall = (min(wall for wall, _ in times[name]) for name in ("baseline", "ours"))
    medians = [statistics.median(wall for wall, _ in times[name]) for name in ("baseline", "ours")]
    print(f"  speed-up {base_wall / ours_wall:.2f}x (wall, best of {repeats}; medians {medians[0] / medians[1]:.2f}x; "
          f"process CPU time {min(c for _, c in times['baseline']) / min(c for _, c in times['ours']):.2f}x); "
          f"real-time factor {waveform.size / 16000 / ours_wall:.0f}x; max abs diff of frame probabilities "
          f"{difference:.1e}; {event_agreement(result['events'], baseline_events, probs, baseline_probs)}", flush=True)
    if profile:  # one more run of each, with timers around the stages
        print(f"  stages, original loop: {profile_original(original, waveform)}")
        print(f"  stages, pipeline:      {profile_pipeline(ours, waveform, chunk_batch_size)}", flush=True)


def summary(times: list[tuple[float, float]]) -> str:
    walls = [wall for wall, _ in times]
    return (f"best {min(walls):7.2f} s, median {statistics.median(walls):7.2f} s (wall); "
            f"CPU best {min(cpu for _, cpu in times):7.2f} s")


def event_agreement(events: list[dict], baseline: list[dict], probs: np.ndarray, baseline_probs: np.ndarray,
                    threshold: float = 0.5) -> str:
    """Same events, or how many differ and why: frames on the other side of the threshold, and how close to it."""
    ours = {(e["label"], e["onset"], e["offset"]) for e in events}
    theirs = {(e["label"], e["onset"], e["offset"]) for e in baseline}
    if ours == theirs and len(events) == len(baseline):
        return f"same events ({len(events)})"
    flipped = (probs > threshold) != (baseline_probs > threshold)
    margin = float(np.abs(baseline_probs[flipped] - threshold).max()) if flipped.any() else float("nan")
    return (f"events differ: {len(ours - theirs)} of {len(events)} not in the original's, {len(theirs - ours)} of "
            f"{len(baseline)} missing; {int(flipped.sum())} frames on the other side of {threshold}, all within "
            f"{margin:.1e} of it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="tiny", choices=("tiny", "released"))
    parser.add_argument("--case", default="sed_atstf_tiny", choices=sorted(MODEL_NAMES), help="--size tiny")
    parser.add_argument("--family", nargs="+", default=list(RELEASES), choices=list(RELEASES), help="--size released")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--chunk-batch-size", type=int, default=None,
                        help="windows per forward pass of the pipeline (default: the pipeline's)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 is steadier on a machine other processes load")
    parser.add_argument("--mkl-linear", action="store_true",
                        help="the pipeline's linear layers through torch's F.linear (MKL), not oneDNN")
    parser.add_argument("--profile", action="store_true",
                        help="then one more run of each path with the time of every stage (front end, encoder, head, "
                             "median filter, events, glue)")
    args = parser.parse_args()
    if args.mkl_linear:
        from audiozoo.pipelines.sound_event_detection import _OneDnnLinear

        _OneDnnLinear._available = False
    if args.threads:
        torch.set_num_threads(args.threads)

    waveform = recording(args.minutes)
    if args.size == "tiny":
        name, heads = MODEL_NAMES[args.case]
        checkpoint = next(path for path in (PARITY / args.case).glob("*.pt"))
        with tempfile.TemporaryDirectory() as folder:
            convert_and_save(checkpoint, folder, name, num_attention_heads=heads)
            print(f"{args.case}: tiny widths")
            compare(Path(folder), name, waveform, args.repeats, args.chunk_batch_size, ORIGINAL_ATTENTION[name],
                    args.profile)
        return
    for family in args.family:
        with tempfile.TemporaryDirectory() as folder:
            converted = convert_released(family, Path(folder))
            compare(converted, family, waveform, args.repeats, args.chunk_batch_size, ORIGINAL_ATTENTION[family],
                    args.profile)
        gc.collect()


if __name__ == "__main__":
    main()
