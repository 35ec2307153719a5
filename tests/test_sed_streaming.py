"""Long audio in pipeline("sound-event-detection") and `audiozoo detect`: files are read, run and post-processed in
windows, and the results are those of the in-memory path (`stream=False`: decode everything, filter all frames).

The two slow tests (`python -m pytest -m slow tests/test_sed_streaming.py`) run `audiozoo detect` on generated
10- and 60-minute recordings: the same events as the in-memory path, and for 60 minutes a peak resident memory
(measured by the kernel for the child process) within a fixed budget above the same command on 90 s.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import soundfile
import torch
from transformers import pipeline

from audiozoo.audio.io import AudioDecodeError, load_audio
from audiozoo.audio.melspec import LogMelSpectrogram
from audiozoo.audio.stream import AudioStream
from audiozoo.cli import main
from audiozoo.pipelines.audio_input import decode_audio_input
from audiozoo.sed.postprocessing import (
    EventStream,
    EventsTsvWriter,
    MedianFilterStream,
    median_filter_probabilities,
    probabilities_to_events,
    write_events_tsv,
)
from conftest import EXAMPLE_CLIP, REPO

SHARED_AUDIO = REPO.parent / "shared" / "audio"
RUN_CLI = "import sys; from audiozoo_cli import main; sys.exit(main(sys.argv[1:]))"


def real_audio(seconds: float, rate: int = 16000) -> np.ndarray:
    """Real audio with events: the shared clips (the example clip where they are missing), reversed copies and a
    stretch of noise, tiled to `seconds`."""
    paths = sorted(SHARED_AUDIO.glob("*.wav")) or [EXAMPLE_CLIP]
    clips = [load_audio(path, sampling_rate=rate)[0] for path in paths]
    rng = np.random.default_rng(0)
    cycle = np.concatenate(clips + [0.5 * clip[::-1] for clip in clips]
                           + [0.05 * rng.standard_normal(7 * rate).astype(np.float32)])
    return np.resize(cycle, int(round(seconds * rate))).astype(np.float32)


def write_long_wav(path, seconds: float, rate: int = 16000):
    """`real_audio` written in pieces as 16-bit WAV (a long recording never whole in this process's memory)."""
    cycle = real_audio(min(seconds, 60.0), rate)
    total = int(round(seconds * rate))
    with soundfile.SoundFile(path, "w", rate, 1, subtype="PCM_16") as sound:
        written = 0
        while written < total:
            part = cycle[: total - written]
            sound.write(part)
            written += part.size
    return path


@pytest.fixture(scope="module")
def detector(converted_dir):
    return pipeline("sound-event-detection", model=str(converted_dir("sed_atstf_tiny")), dtype=torch.float32)


@pytest.fixture(scope="module")
def recording_95s(tmp_path_factory):
    """95.3 s at 16 kHz (ten windows, the last one 5.3 s), as a float WAV."""
    waveform = real_audio(95.3)
    path = tmp_path_factory.mktemp("streaming") / "real_95s.wav"
    soundfile.write(path, waveform, 16000, subtype="FLOAT")
    return waveform, str(path)


def assert_same_result(streamed: dict, in_memory: dict) -> float:
    """Equal events (every field) and frame probabilities; returns the max abs difference of the probabilities."""
    assert streamed["frame_probabilities"].shape == in_memory["frame_probabilities"].shape
    difference = float(np.abs(streamed["frame_probabilities"] - in_memory["frame_probabilities"]).max())
    assert difference <= 1e-5
    key = "events" if "events" in in_memory else "events_by_threshold"
    assert streamed[key] == in_memory[key]
    assert streamed["duration"] == in_memory["duration"]
    return difference


# ---- the reader ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rate,channels,fmt,subtype", [
    (16000, 1, "WAV", "FLOAT"),
    (44100, 2, "WAV", "PCM_16"),
    (32000, 1, "FLAC", "PCM_24"),
    (48000, 2, "OGG", "VORBIS"),
    (8000, 1, "WAV", "PCM_16"),
])
def test_stream_gives_the_samples_of_the_in_memory_decoder(tmp_path, rate, channels, fmt, subtype):
    """Decoded, down-mixed and resampled block by block (soxr's streaming resampler): bit for bit the one-shot
    samples, with any block size."""
    waveform = real_audio(23.7, rate)
    samples = np.stack([waveform, 0.5 * waveform[::-1]], axis=1) if channels == 2 else waveform
    path = tmp_path / f"clip.{fmt.lower()}"
    soundfile.write(path, samples, rate, format=fmt, subtype=subtype)
    expected = decode_audio_input(str(path), 16000)
    for block_seconds in (0.37, 3.0, 10.0):
        stream = AudioStream(str(path), 16000, block_seconds=block_seconds)
        blocks = list(stream)
        assert max(block.size for block in blocks) <= int(block_seconds * 16000) + 2048  # + the resampler's delay
        np.testing.assert_array_equal(np.concatenate(blocks), expected)
        assert stream.samples == expected.size
    from_bytes = np.concatenate(list(AudioStream(path.read_bytes(), 16000, block_seconds=1.0)))
    np.testing.assert_array_equal(from_bytes, expected)


def test_stream_errors_are_those_of_the_in_memory_decoder(tmp_path):
    """A NaN or an integer-scale sample late in a long file is counted and placed in the whole file, as before."""
    waveform = real_audio(30.0, 44100)
    cases = {}
    nan = waveform.copy()
    nan[[100, 25 * 44100, 25 * 44100 + 7, 29 * 44100, 29 * 44100 + 1]] = np.nan
    cases["nan.wav"] = nan
    loud = waveform.copy()
    loud[20 * 44100] = 300.0
    cases["int_scale.wav"] = loud
    late_nan = waveform.copy()
    late_nan[28 * 44100] = np.inf
    cases["late_inf.wav"] = late_nan
    for name, samples in cases.items():
        path = tmp_path / name
        soundfile.write(path, samples, 44100, subtype="FLOAT")
        with pytest.raises(ValueError) as in_memory:
            decode_audio_input(str(path), 16000)
        with pytest.raises(ValueError, match=re.escape(str(in_memory.value))):
            list(AudioStream(str(path), 16000, block_seconds=2.0))
    # truncated: refused when the stream is made (as load_audio), or read as far as it goes
    data = (tmp_path / "nan.wav").read_bytes()
    soundfile.write(tmp_path / "good.wav", waveform, 44100, subtype="PCM_16")
    good = (tmp_path / "good.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(good[: len(good) // 2])
    with pytest.raises(AudioDecodeError, match="cut.wav is truncated"):
        AudioStream(str(tmp_path / "cut.wav"), 16000)
    allowed = np.concatenate(list(AudioStream(str(tmp_path / "cut.wav"), 16000, allow_truncated=True)))
    np.testing.assert_array_equal(allowed, decode_audio_input(str(tmp_path / "cut.wav"), 16000, allow_truncated=True))
    assert data  # the NaN file is complete: only its samples are wrong
    soundfile.write(tmp_path / "short.wav", waveform[:100], 44100)
    with pytest.raises(ValueError, match=r"short.wav is too short: 100 samples \(0.0023 s at 44100 Hz\)"):
        list(AudioStream(str(tmp_path / "short.wav"), 16000, minimum_samples=513))


# ---- post-processing in blocks ---------------------------------------------------------------------------------

def _split(rng, total: int, largest: int) -> list[int]:
    sizes, position = [], 0
    while position < total:
        sizes.append(int(rng.integers(0, largest)))
        position += sizes[-1]
    return sizes


def test_median_filter_and_events_in_blocks_equal_the_whole_signal():
    """Any block sizes (empty ones too), odd, even and per-class windows, signals shorter than the window: the same
    medians bit for bit, the same events in the same order, released as the frames come."""
    rng = np.random.default_rng(0)
    for trial in range(200):
        frames, classes = int(rng.integers(1, 400)), int(rng.integers(1, 6))
        probabilities = np.repeat(rng.random((frames, classes)).astype(np.float32), 3, axis=0)[:frames]
        window = int(rng.integers(1, 40)) if trial % 2 else [int(w) for w in rng.integers(1, 40, classes)]
        expected = median_filter_probabilities(probabilities, window)
        stream, pieces, position = MedianFilterStream(classes, window), [], 0
        for size in _split(rng, frames, 90):
            pieces.append(stream.push(probabilities[position : position + size]))
            position += size
        pieces.append(stream.finish())
        np.testing.assert_array_equal(np.concatenate(pieces), expected)

        labels = [f"class {index}" for index in range(classes)][::-1]
        threshold = float(rng.random()) if trial % 3 else list(rng.random(classes))
        duration = max(1e-3, frames * 0.04 - float(rng.random()) * 0.039)
        reference = probabilities_to_events(expected, labels, 0.04, threshold, duration)
        heard = []
        events = EventStream(labels, 0.04, threshold, on_event=heard.append)
        released, position = [], 0
        for size in _split(rng, frames, 50):
            released += events.push(expected[position : position + size])
            position += size
        released += events.finish(duration)
        assert released == heard == reference


def test_tsv_writer_writes_the_rows_of_write_events_tsv(tmp_path):
    events = {"a.wav": [{"label": "Speech", "onset": 0.0, "offset": 1.23456, "score": 0.9}],
              "b.wav": [], "c.wav": [{"label": "Dog", "onset": 2.0, "offset": 3.0, "score": 0.6},
                                     {"label": "Cat", "onset": 2.5, "offset": 3.5, "score": 0.7}]}
    write_events_tsv(tmp_path / "whole.tsv", events)
    writer = EventsTsvWriter(tmp_path / "rows.tsv")
    for name, group in events.items():
        writer.start_file(name)
        for event in group:
            writer.add(event)
        if name == "a.wav":  # a failed file in between: its rows are withdrawn
            writer.start_file("failed.wav")
            writer.add({"label": "Speech", "onset": 9.0, "offset": 9.5, "score": 0.9})
            writer.discard_file()
    writer.close()
    assert (tmp_path / "rows.tsv").read_text() == (tmp_path / "whole.tsv").read_text() and writer.rows == 3
    unused = EventsTsvWriter(tmp_path / "none.tsv")
    unused.close(keep=False)
    assert not (tmp_path / "none.tsv").exists()


# ---- the pipeline ----------------------------------------------------------------------------------------------

def test_streamed_file_equals_the_in_memory_path(detector, recording_95s, tmp_path):
    waveform, path = recording_95s
    for batch in (3, 8):
        streamed = detector(path, return_frame_probabilities=True, chunk_batch_size=batch)
        in_memory = detector(path, return_frame_probabilities=True, chunk_batch_size=batch, stream=False)
        assert len(in_memory["events"]) > 100 and in_memory["frame_probabilities"].shape == (2383, 447)
        assert assert_same_result(streamed, in_memory) == 0.0  # the same batches, the same medians: identical
    # 44.1 kHz stereo 16-bit: decoded, down-mixed and resampled in blocks
    stereo = tmp_path / "stereo_44k.wav"
    resampled = decode_audio_input(waveform, 44100, sampling_rate=16000)
    soundfile.write(stereo, np.stack([resampled, 0.5 * resampled], axis=1), 44100, subtype="PCM_16")
    options = dict(thresholds=[0.3, 0.6], median_window=[5] * 200 + [1] * 100 + [28] * 147,
                   return_frame_probabilities=True)
    assert_same_result(detector(str(stereo), **options), detector(str(stereo), stream=False, **options))
    # arrays are in memory already; their windows and post-processing stream the same way
    assert_same_result(detector(waveform, sampling_rate=16000, **options),
                       detector(waveform, sampling_rate=16000, stream=False, **options))
    assert detector(path) == streamed["events"]  # without frame probabilities: the same list of events


def test_events_are_final_while_the_audio_is_still_read(detector, recording_95s):
    """on_event hears each event once, in the order of the result, and the first ones before the audio ends."""
    waveform, path = recording_95s
    log = []
    events = detector(path, chunk_batch_size=2, on_event=lambda event: log.append(("event", event)),
                      on_audio=lambda block: log.append(("audio", block)))
    assert [entry for kind, entry in log if kind == "event"] == events
    last_audio = max(index for index, (kind, _) in enumerate(log) if kind == "audio")
    assert log.index(next(entry for entry in log if entry[0] == "event")) < last_audio
    np.testing.assert_array_equal(np.concatenate([entry for kind, entry in log if kind == "audio"]), waveform)
    grouped = []
    result = detector(path, thresholds=[0.4, 0.8], on_event=lambda event, value: grouped.append((value, event)))
    assert sorted(grouped, key=lambda item: item[0]) == [(value, event) for value in (0.4, 0.8)
                                                        for event in result[value]]


def test_short_and_bad_inputs_stream_with_the_same_errors(detector, tmp_path):
    short = tmp_path / "short.wav"
    soundfile.write(short, np.full(513, 0.5, dtype=np.float32), 16000, subtype="FLOAT")
    assert detector(str(short), threshold=0.0) == detector(str(short), threshold=0.0, stream=False)
    nan = real_audio(50.0)
    nan[45 * 16000] = np.nan
    soundfile.write(tmp_path / "late_nan.wav", nan, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"late_nan.wav has 1 NaN/Inf sample \(at 45.0000 s; first at sample "
                                         r"720000 of 800000 at 16000 Hz\)"):
        detector(str(tmp_path / "late_nan.wav"), chunk_batch_size=1)


# ---- the command line ------------------------------------------------------------------------------------------

def test_detect_writes_rows_as_it_goes_and_withdraws_a_failed_file(converted_dir, recording_95s, tmp_path, capsys):
    """The TSV of the streamed run is the TSV of the in-memory events; a file that fails part-way (a NaN after the
    first windows) leaves no rows, and the good files' rows stay."""
    waveform, path = recording_95s
    bad = waveform.copy()
    bad[60 * 16000] = np.nan
    bad_path = tmp_path / "nan_at_60s.wav"
    soundfile.write(bad_path, bad, 16000, subtype="FLOAT")
    folder = str(converted_dir("sed_atstf_tiny"))
    tsv, png = tmp_path / "events.tsv", tmp_path / "events.png"
    status = main(["detect", path, str(bad_path), "--model", folder, "--tsv", str(tsv), "--chunk-batch-size", "2"])
    out, err = capsys.readouterr()
    assert status == 1 and "nan_at_60s.wav has 1 NaN/Inf sample" in err
    detector = pipeline("sound-event-detection", model=folder, dtype=torch.float32)
    expected = detector(path, stream=False)
    write_events_tsv(tmp_path / "expected.tsv", {"real_95s.wav": expected})
    assert tsv.read_text() == (tmp_path / "expected.tsv").read_text()
    assert f"wrote {len(expected)} events to {tsv}" in out
    lines = out.splitlines()
    assert lines[0] == path and lines[1] == (f"  {expected[0]['onset']:8.2f} {expected[0]['offset']:8.2f}  "
                                             f"{expected[0]['score']:.3f}  {expected[0]['label']}")
    # --plot from the same pass; no good file: no TSV
    assert main(["detect", path, "--model", folder, "--plot", str(png), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[path] == expected and png.read_bytes()[:4] == b"\x89PNG"
    tsv.unlink()
    assert main(["detect", str(bad_path), "--model", folder, "--tsv", str(tsv)]) == 1
    assert not tsv.exists()


# ---- the plot --------------------------------------------------------------------------------------------------

def test_spectrogram_image_in_blocks(tmp_path, monkeypatch):
    """One column per 10 ms frame (LogMelSpectrogram's frames) up to MAX_COLUMNS; beyond, each column is the mean
    mel power of 2^k frames, and the figure says so."""
    from matplotlib.figure import Figure

    from audiozoo.sed.plot import SpectrogramImage, plot_events

    waveform = real_audio(23.5)
    expected = LogMelSpectrogram(16000, n_fft=1024, hop_length=160, n_mels=64)(torch.from_numpy(waveform))[0].numpy()
    image = SpectrogramImage(16000)
    for start in range(0, waveform.size, 7777):
        image.push(waveform[start : start + 7777])
    mel, per_column, frame, samples = image.image()
    assert per_column == 1 and samples == waveform.size and frame == 0.01
    np.testing.assert_allclose(mel, expected, atol=1e-5)

    power = LogMelSpectrogram(16000, n_fft=1024, hop_length=160, n_mels=64).mel_power(torch.from_numpy(waveform))[0]
    small = SpectrogramImage(16000, max_columns=500)  # 2351 frames -> columns of 8 frames
    for start in range(0, waveform.size, 16000):
        small.push(waveform[start : start + 16000])
    mel, per_column, _, _ = small.image()
    assert per_column == 8 and mel.shape == (64, 294)
    power = power.numpy()
    np.testing.assert_allclose(mel[:, :-1], np.log(power[:, :2344].reshape(64, 293, 8).mean(axis=2) + 1.1920929e-07),
                               atol=1e-5)

    saved = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda figure, *a, **k: (saved.append(figure), save(figure, *a, **k))[1])
    events = [{"label": "Speech", "onset": 1.0, "offset": 2.0, "score": 0.9}]
    plot_events(small, 16000, events, tmp_path / "binned.png")
    top = next(ax for ax in saved[0].axes if ax.get_ylabel() == "mel bin")
    assert "mean mel power of 8 frames (0.08 s)" in top.get_title(loc="right")
    left, right, _, _ = top.images[0].get_extent()
    assert left <= 0.0 and right >= 23.5 and top.get_xlim() == pytest.approx((0.0, 23.5))


# ---- long recordings (slow) ------------------------------------------------------------------------------------

# A fresh small interpreter starts the command and writes its ru_maxrss (os.wait4) to argv[1]: Linux carries the
# spawning process's own peak RSS (here pytest's) into the ru_maxrss of a child it spawns directly.
MEASURE = ("import os, subprocess, sys; process = subprocess.Popen(sys.argv[2:]); "
           "_, status, usage = os.wait4(process.pid, 0); open(sys.argv[1], 'w').write(str(usage.ru_maxrss)); "
           "sys.exit(os.waitstatus_to_exitcode(status))")


def _peak_rss_mib(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command in a child process; its peak resident memory in MiB (the kernel's ru_maxrss for it)."""
    with tempfile.NamedTemporaryFile("r") as peak:
        done = subprocess.run([sys.executable, "-c", MEASURE, peak.name, *command], capture_output=True, text=True)
        return float(peak.read() or "nan") / 1024, done


@pytest.mark.slow
def test_ten_minutes_equal_the_in_memory_path(detector, tmp_path):
    path = str(write_long_wav(tmp_path / "ten_minutes.wav", 600.0))
    options = dict(return_frame_probabilities=True, median_window=[9] * 400 + [31] * 47)
    assert_same_result(detector(path, **options), detector(path, stream=False, **options))


@pytest.mark.slow
def test_detect_on_an_hour_stays_within_a_fixed_memory_budget(converted_dir, detector, tmp_path):
    """`audiozoo detect` (a child process) on 60 minutes: the same events as the in-memory path, and a peak RSS at
    most 512 MiB above the same command on 90 s (the in-memory path needed ~1.3 GiB more; what remains is the
    output: the events of the hour, ~330,000 with this tiny model at threshold 0.5, held for the result)."""
    folder = str(converted_dir("sed_atstf_tiny"))
    short = str(write_long_wav(tmp_path / "ninety_seconds.wav", 90.0))
    hour = str(write_long_wav(tmp_path / "hour.wav", 3600.0))
    command = [sys.executable, "-c", RUN_CLI, "detect", "--model", folder]
    baseline, done = _peak_rss_mib(command + [short, "--tsv", str(tmp_path / "short.tsv")])
    assert done.returncode == 0, done.stderr
    peak, done = _peak_rss_mib(command + [hour, "--tsv", str(tmp_path / "hour.tsv"), "--plot",
                                          str(tmp_path / "hour.png")])
    assert done.returncode == 0, done.stderr
    print(f"peak RSS: {baseline:.0f} MiB on 90 s, {peak:.0f} MiB on 60 min")
    assert peak - baseline < 512
    expected = detector(hour, stream=False)
    write_events_tsv(tmp_path / "expected.tsv", {"hour.wav": expected})
    assert (tmp_path / "hour.tsv").read_text() == (tmp_path / "expected.tsv").read_text()
