"""Peak memory and time of `audiozoo detect` on long recordings: the previous in-memory path vs streaming.

    python bench/bench_detect_memory.py [--minutes 10 30 60] [--case sed_atstf_tiny] [--before REV]
                                        [--skip-before] [--no-plot] [--threshold 0.5] [--keep DIR]

Recordings: real audio (the shared clips and reversed copies, tiled; a chirp where they are missing) written as
16 kHz 16-bit WAV files of each length (in pieces: this process stays small). The model is a parity case converted
as the tests do (sed_atstf_tiny: ATST-Frame at tiny widths, 447 classes).

Each measurement is one child process running the console command's entry point,
`python -c "from audiozoo_cli import main; ..." detect FILE --model DIR --tsv OUT.tsv [--plot OUT.png]`; its peak
resident memory is the `ru_maxrss` of `os.wait4` for that child (the kernel's high-water mark of its RSS), read by a
small interpreter that starts it (Linux would count this process's own peak in a child it spawns). "before" is
the package source of git revision `--before` (default: the last one with the in-memory `detect`, i.e. the parent of
the first commit whose cli.py writes the TSV row by row), extracted with `git archive` and put first on PYTHONPATH; "after" is this working tree. The first row is the same command on 10 s of audio: Python,
torch, transformers and the model, the part that does not depend on the recording. The events the two write must be
the same: the TSV files are compared and the result is printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import convert_case, load_case  # noqa: E402

RUN_CLI = "import sys; from audiozoo_cli import main; sys.exit(main(sys.argv[1:]))"
# A fresh small interpreter starts the measured command and writes its ru_maxrss (os.wait4) to argv[1]. Not the
# benchmark itself: Linux carries the spawning process's own peak RSS into the child's ru_maxrss at exec.
MEASURE = ("import os, subprocess, sys; process = subprocess.Popen(sys.argv[2:]); "
           "_, status, usage = os.wait4(process.pid, 0); open(sys.argv[1], 'w').write(str(usage.ru_maxrss)); "
           "sys.exit(os.waitstatus_to_exitcode(status))")


def write_recording(path: Path, seconds: float, rate: int = 16000) -> Path:
    """Real audio tiled to `seconds`, written block by block as 16-bit WAV (never the whole recording in memory)."""
    from audiozoo.audio.io import load_audio

    clips = [load_audio(clip, sampling_rate=rate)[0] for clip in sorted((REPO.parent / "shared" / "audio").glob("*.wav"))]
    if not clips:
        time_axis = np.arange(10 * rate) / rate
        clips = [(0.3 * np.sin(2 * np.pi * 440 * time_axis * (1 + 0.3 * time_axis))).astype(np.float32)]
    rng = np.random.default_rng(0)
    pieces = clips + [clip[::-1].copy() for clip in clips] + [0.05 * rng.standard_normal(7 * rate).astype(np.float32)]
    cycle = np.concatenate(pieces)
    total = int(round(seconds * rate))
    with soundfile.SoundFile(path, "w", rate, 1, subtype="PCM_16") as sound:
        written = 0
        while written < total:
            part = cycle[: total - written]
            sound.write(part)
            written += part.size
    return path


def peak_rss(command: list[str], env: dict | None = None) -> tuple[float, float, int, str]:
    """(peak RSS in MiB, seconds, exit status, stderr tail) of a child process (see MEASURE)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors, tempfile.NamedTemporaryFile("r") as peak:
        done = subprocess.run([sys.executable, "-c", MEASURE, peak.name, *command], stdout=subprocess.DEVNULL,
                              stderr=errors, env=env)
        seconds = time.perf_counter() - start
        errors.seek(0)
        tail = errors.read().decode(errors="replace")[-600:]
        kib = float(peak.read() or "nan")
    return kib / 1024, seconds, done.returncode, tail  # ru_maxrss is in KiB on Linux


def previous_revision() -> str:
    """The last revision with the in-memory `detect`: the parent of the first commit whose cli.py writes the TSV
    row by row (EventsTsvWriter), or HEAD while that is not committed."""
    commits = subprocess.run(["git", "log", "-S", "EventsTsvWriter", "--format=%H", "--", "src/audiozoo/cli.py"],
                             cwd=REPO, capture_output=True, text=True).stdout.split()
    return f"{commits[-1]}^" if commits else "HEAD"


def extract_source(revision: str, folder: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision, "src"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 30.0, 60.0])
    parser.add_argument("--case", default="sed_atstf_tiny")
    parser.add_argument("--before", default=None, help="git revision of the in-memory path (default: see above)")
    parser.add_argument("--skip-before", action="store_true", help="measure the streaming path only")
    parser.add_argument("--no-plot", action="store_true", help="skip the runs with --plot")
    parser.add_argument("--threshold", default="0.5")
    parser.add_argument("--keep", default=None, help="write the recordings, TSVs and plots here (kept)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.keep or scratch)
        work.mkdir(parents=True, exist_ok=True)
        model = convert_case(load_case(args.case), work / args.case)
        revision = args.before or previous_revision()
        paths = {"after": str(REPO / "src")}
        if not args.skip_before:
            before_root = work / "before"
            before_root.mkdir(exist_ok=True)
            paths["before"] = str(extract_source(revision, before_root))
        commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=REPO, capture_output=True,
                                text=True).stdout.strip()
        print(f"model {args.case} ({model}); before = git {revision} ({commit}), after = working tree; "
              f"threshold {args.threshold}; CPU threads {os.cpu_count()}")
        print(f"{'audio':>8} {'path':>7} {'--plot':>6} {'peak RSS MiB':>13} {'seconds':>8}  events")
        plots = [False] if args.no_plot else [False, True]
        for minutes in [10 / 60, *args.minutes]:
            recording = write_recording(work / f"recording_{minutes:g}min.wav", minutes * 60)
            tsvs = {}
            for plot in plots:
                for name, source in paths.items():
                    tsv = work / f"{name}_{minutes:g}min{'_plot' if plot else ''}.tsv"
                    command = [sys.executable, "-c", RUN_CLI, "detect", str(recording), "--model", str(model),
                               "--threshold", args.threshold, "--tsv", str(tsv)]
                    if plot:
                        command += ["--plot", str(tsv.with_suffix(".png"))]
                    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
                    rss, seconds, status, tail = peak_rss(command, env)
                    if status != 0:
                        print(f"  {name} failed (exit {status}): {tail}")
                        continue
                    events = len(tsv.read_text().splitlines()) - 1
                    tsvs[(name, plot)] = tsv.read_bytes()
                    label = "10 s" if minutes < 1 else f"{minutes:g} min"
                    print(f"{label:>8} {name:>7} {'yes' if plot else 'no':>6} {rss:13.0f} {seconds:8.1f}  {events}",
                          flush=True)
            outputs = set(tsvs.values())
            print(f"{'':>8} same TSV from every run of this recording: {len(outputs) == 1}", flush=True)
            if not args.keep:
                recording.unlink()


if __name__ == "__main__":
    main()
