"""Read a long audio file piece by piece: mono float32 blocks at a target rate, in memory bounded by the block size.

`AudioStream` decodes a file (or the bytes of one) with libsndfile in blocks of `block_seconds`, down-mixes each
block and resamples it with soxr's streaming resampler (`soxr.ResampleStream`, quality HQ), which keeps its filter
state between blocks: the concatenated blocks are bit for bit the samples of the in-memory path
(`load_audio` + `to_mono` + `resample`, i.e. `soxr.resample` of the whole file), whatever the block size; there are
no edge artefacts at block boundaries.

The checks are those of the in-memory path, with the same messages: the header is read when the stream is made
(missing file, directory, undecodable, empty, truncated unless `allow_truncated`); NaN/Inf samples and float samples
at integer scale are found block by block, and when a block has one the file is read once more to the end (blocks
again) so that the message counts and places them in the whole file as `check_finite` / `check_float_range` do;
a file shorter than `minimum_samples` (at the target rate) is refused when it ends.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile
import soxr

from .io import (
    MAX_FLOAT_PEAK,
    AudioDecodeError,
    _decode_error,
    _inspect,
    _truncation_message,
    check_audio_file,
    float_range_message,
    nonfinite_frames,
    nonfinite_message,
    to_mono,
)

DEFAULT_BLOCK_SECONDS = 10.0

__all__ = ["DEFAULT_BLOCK_SECONDS", "AudioStream", "too_short_message"]


def too_short_message(source: str, source_frames: int, rate: int, minimum_samples: int, target_rate: int) -> str:
    """The message for audio shorter than a model's minimum (as `decode_audio_input` words it)."""
    return (
        f"{source} is too short: {source_frames} samples ({source_frames / rate:.4f} s at {rate} Hz); the model "
        f"needs at least {minimum_samples} samples ({minimum_samples / target_rate:.4f} s at {target_rate} Hz)"
    )


class AudioStream:
    """Mono float32 blocks of an audio file at `target_sampling_rate`; iterate it (once or again) to decode.

    Args:
        source: a path (str or Path) or the bytes of an audio file (wav, flac, ogg, mp3: libsndfile's formats).
        target_sampling_rate: the rate of the blocks (soxr HQ, as `resample`).
        allow_truncated: use the frames that are there of a file shorter than its header declares.
        name: how to call bytes in messages (paths are named by themselves).
        minimum_samples: refuse (ValueError, at the end of the stream) audio shorter than this at the target rate.
        block_seconds: seconds of the file decoded at a time (the memory bound: ~channels x rate x this x 4 bytes).

    After a complete iteration, `samples` holds the number of samples yielded (at the target rate) and
    `source_frames` the frames decoded (at the file's rate).
    """

    def __init__(self, source: str | Path | bytes | bytearray, target_sampling_rate: int, *,
                 allow_truncated: bool = False, name: str | None = None, minimum_samples: int | None = None,
                 block_seconds: float = DEFAULT_BLOCK_SECONDS):
        if target_sampling_rate <= 0:
            raise ValueError(f"sampling rates must be positive, got {target_sampling_rate}")
        if not block_seconds > 0:
            raise ValueError(f"block_seconds must be positive, got {block_seconds}")
        self.target_sampling_rate = int(target_sampling_rate)
        self.allow_truncated = allow_truncated
        self.minimum_samples = minimum_samples
        if isinstance(source, (bytes, bytearray)):
            self._data: bytes | None = bytes(source)
            self._path: Path | None = None
            self.name = name or "the given bytes"
            self.frames, self.sampling_rate, self.channels, _ = _inspect(io.BytesIO(self._data), self.name,
                                                                         allow_truncated)
        else:
            info = check_audio_file(source, allow_truncated=allow_truncated)
            self._data, self._path, self.name = None, info.path, str(source)
            self.frames, self.sampling_rate, self.channels = info.frames, info.sampling_rate, info.channels
        self.block_frames = max(1, int(round(block_seconds * self.sampling_rate)))
        self.samples = 0
        self.source_frames = 0

    @property
    def expected_samples(self) -> int:
        """About how many samples the stream yields (the file's frames at the target rate)."""
        return int(round(self.frames * self.target_sampling_rate / self.sampling_rate))

    @property
    def expected_duration(self) -> float:
        return self.frames / self.sampling_rate

    def _open(self) -> soundfile.SoundFile:
        try:
            return soundfile.SoundFile(io.BytesIO(self._data) if self._data is not None else str(self._path))
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
            raise _decode_error(self.name, error) from error

    def _blocks(self) -> Iterator[np.ndarray]:
        """[frames, channels] float32 blocks at the file's rate, `self.frames` in all (fewer if the data ends early)."""
        with self._open() as sound:
            read = 0
            while read < self.frames:
                try:
                    block = sound.read(min(self.block_frames, self.frames - read), dtype="float32", always_2d=True)
                except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
                    raise _decode_error(self.name, error) from error
                if len(block) == 0:
                    return
                read += len(block)
                yield block

    def __iter__(self) -> Iterator[np.ndarray]:
        rate, target = self.sampling_rate, self.target_sampling_rate
        resampler = (soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")
                     if rate != target else None)
        self.samples = self.source_frames = 0
        for block in self._blocks():
            if _has_problem(block):
                raise self._whole_file_error()
            self.source_frames += len(block)
            mono = np.ascontiguousarray(to_mono(block), dtype=np.float32)
            if resampler is not None:
                mono = resampler.resample_chunk(mono)
            if mono.size:
                self.samples += mono.size
                yield mono
        self._check_length(self.source_frames)
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                self.samples += tail.size
                yield tail
        if self.minimum_samples is not None and self.samples < self.minimum_samples:
            raise ValueError(too_short_message(self.name, self.source_frames, rate, self.minimum_samples, target))

    def _check_length(self, read: int) -> None:
        """The decoder ran dry before the count the header check reported (as `load_audio` reports it)."""
        if read < self.frames:
            message = _truncation_message(self.name, self.frames, read, self.sampling_rate)
            if not self.allow_truncated:
                raise AudioDecodeError(f"{message}; pass --allow_truncated to use them")
            if read == 0:
                raise AudioDecodeError(f"{self.name} contains no samples ({message})")

    def _whole_file_error(self) -> Exception:
        """A block had NaN/Inf or integer-scale samples: read the file to its end (in blocks) and return the error
        the in-memory path raises for it, counted over the whole file."""
        read, count, first, peak = 0, 0, [], 0.0
        for block in self._blocks():
            bad = nonfinite_frames(block)
            if bad.size:
                first.extend((bad[: max(0, 4 - len(first))] + read).tolist())
                count += bad.size
            elif block.size:
                peak = max(peak, float(np.max(block)), -float(np.min(block)))
            read += len(block)
        try:
            self._check_length(read)
        except AudioDecodeError as error:
            return error
        if count:
            return ValueError(nonfinite_message(self.name, count, first, read, self.sampling_rate))
        return ValueError(float_range_message(self.name, peak))


def _has_problem(block: np.ndarray) -> bool:
    """NaN/Inf (one makes the sum non-finite; no temporary array) or float samples beyond MAX_FLOAT_PEAK."""
    if block.size == 0:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        if not math.isfinite(float(np.sum(block, dtype=np.float64))):
            return True
    return max(float(np.max(block)), -float(np.min(block))) > MAX_FLOAT_PEAK
