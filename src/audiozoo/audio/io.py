"""Audio files and arrays for the CLI and pipelines: load, convert to float, down-mix, resample.

Models and feature extractors never call this: they take mono float waveforms at their own rate and refuse
anything else.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile
import soxr


class AudioDecodeError(ValueError):
    """A file or byte string could not be decoded as audio, holds no samples, or is truncated."""


class LibsndfileDecodeError(AudioDecodeError):
    """libsndfile could not open or decode the data (unknown format, corrupt file)."""


# Float audio may carry overs (a float WAV written by a mixer or an effect chain can peak a little above
# full scale), so [-1, 1] is not a hard limit. Integer PCM stored as float, the mistake this catches, peaks
# in the hundreds to 32767; below 2.0 (+6 dBFS) an int16-scale signal would be -84 dBFS, i.e. silence.
MAX_FLOAT_PEAK = 2.0

# Bytes per sample of the uncompressed subtypes, whose data-chunk size gives a frame count.
_SAMPLE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                 "ULAW": 1, "ALAW": 1}
# Lengths written when the real one was unknown (streamed output): 0, all ones, and sox's "MS_UNSPEC".
_UNKNOWN_LENGTHS = {0, 0xFFFFFFFF, 0x7FFFF000, 0xFFFFFFFFFFFFFFFF}


@dataclass(frozen=True)
class AudioFileInfo:
    """What the header of an audio file says and how much of it is there.

    `frames`: frames present (what `load_audio` returns); `declared_frames`: the length the header declares,
    None when the format declares none (Ogg) or the writer did not know it (streamed WAV).
    """

    path: Path
    frames: int
    sampling_rate: int
    channels: int
    declared_frames: int | None

    @property
    def duration(self) -> float:
        """Seconds present."""
        return self.frames / self.sampling_rate

    @property
    def truncated(self) -> bool:
        return self.declared_frames is not None and self.frames < self.declared_frames


def check_audio_file(path: str | Path, *, allow_truncated: bool = False) -> AudioFileInfo:
    """Look at an audio file without decoding it: header, size and (for compressed formats) its last frame.

    Raises FileNotFoundError, IsADirectoryError, or AudioDecodeError when libsndfile cannot read it, it holds
    no samples, or it is truncated (fewer frames present than its header declares) and not `allow_truncated`.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not an audio file")
    if not path.exists():
        raise FileNotFoundError(f"audio file not found: {path}")
    frames, rate, channels, declared = _inspect(path, str(path), allow_truncated)
    return AudioFileInfo(path, frames, rate, channels, declared)


def load_audio(
    path: str | Path, sampling_rate: int | None = None, mono: bool = True, *, allow_truncated: bool = False
) -> tuple[np.ndarray, int]:
    """Read a file with libsndfile (wav, flac, ogg/vorbis/opus, mp3, ...) -> (float32 samples, rate).

    The file is checked first (`check_audio_file`): a truncated file is an error unless `allow_truncated`, and
    NaN/Inf samples are refused, with their positions in the file. Multi-channel audio is averaged to mono when
    `mono` (else [samples, channels]); with `sampling_rate` the samples are resampled to it (soxr, high quality).
    """
    info = check_audio_file(path, allow_truncated=allow_truncated)
    samples, rate = _read(info.path, str(info.path), info.frames, allow_truncated)
    if mono:
        samples = to_mono(samples)
    if sampling_rate is not None and sampling_rate != rate:
        samples, rate = resample(samples, rate, sampling_rate), sampling_rate
    return samples, rate


def decode_audio_bytes(
    data: bytes, *, allow_truncated: bool = False, source: str = "the given bytes"
) -> tuple[np.ndarray, int]:
    """The bytes of an audio file -> ([samples, channels] float32, rate), with the checks of `load_audio`."""
    frames, _, _, _ = _inspect(io.BytesIO(data), source, allow_truncated)
    return _read(io.BytesIO(data), source, frames, allow_truncated)


def _inspect(source: Path | BinaryIO, name: str, allow_truncated: bool) -> tuple[int, int, int, int | None]:
    """(frames present, rate, channels, frames declared) of a file or file object; refuses truncated and empty."""
    try:
        with soundfile.SoundFile(source) as sound:
            frames, rate, channels = sound.frames, sound.samplerate, sound.channels
            if sound.format in _HEADER_READERS:
                # libsndfile counts the frames present; the header says how many there should be
                declared = _declared_frames(source, sound.format, sound.subtype, channels)
                complete = True
            else:
                # FLAC, MP3 (Xing header), ...: libsndfile reports the header's count; see whether the last frame
                # decodes. Ogg declares no length (libsndfile reads the last page's position): None.
                known = 0 < frames < 2**62
                declared = frames if known and sound.format != "OGG" else None
                complete = known and _last_frame_decodes(sound)
        if not complete:
            frames = _count_decodable_frames(source)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise _decode_error(name, error) from error
    if declared is not None and frames < declared and not allow_truncated:
        message = _truncation_message(name, declared, frames, rate)
        raise AudioDecodeError(f"{message}; pass --allow_truncated to use them")
    if frames == 0:
        detail = f" ({_truncation_message(name, declared, frames, rate)})" if declared else ""
        raise AudioDecodeError(f"{name} contains no samples{detail}")
    return frames, rate, channels, declared


def _read(source: Path | BinaryIO, name: str, frames: int, allow_truncated: bool) -> tuple[np.ndarray, int]:
    """Decode `frames` frames -> ([frames, channels] float32, rate); NaN/Inf are refused here, at the file's rate."""
    try:
        samples, rate = soundfile.read(source, frames=frames, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise _decode_error(name, error) from error
    if samples.shape[0] < frames:
        # the decoder ran dry before the count it reported (damage that the header check cannot see)
        message = _truncation_message(name, frames, samples.shape[0], rate)
        if not allow_truncated:
            raise AudioDecodeError(f"{message}; pass --allow_truncated to use them")
        if samples.shape[0] == 0:
            raise AudioDecodeError(f"{name} contains no samples ({message})")
    check_finite(samples, rate, name)
    return samples, rate


def check_finite(samples: np.ndarray, sampling_rate: int, source: str) -> None:
    """Refuse NaN/Inf in [samples] or [samples, channels], counting frames and giving their times at this rate."""
    with np.errstate(invalid="ignore"):  # inf + -inf
        if np.isfinite(np.sum(samples, dtype=np.float64)):  # one NaN/Inf makes the sum NaN/Inf; no temporary array
            return
    bad = nonfinite_frames(samples)
    raise ValueError(nonfinite_message(source, bad.size, bad[:4].tolist(), len(samples), sampling_rate))


def nonfinite_frames(samples: np.ndarray) -> np.ndarray:
    """Indices of the frames of [samples] or [samples, channels] that hold a NaN or Inf."""
    finite = np.isfinite(samples)
    return np.flatnonzero(~finite.all(axis=1) if finite.ndim == 2 else ~finite)


def nonfinite_message(source: str, count: int, first: list[int], frames: int, sampling_rate: int) -> str:
    """The message of `check_finite`: `count` bad frames, the first of them (up to 4 given, 3 shown) at this rate.

    Shared with the streaming reader (audio/stream.py), which counts block by block."""
    where = ", ".join(f"{index / sampling_rate:.4f} s" for index in first[:3]) + (", ..." if count > 3 else "")
    return (
        f"{source} has {count} NaN/Inf sample{'s' if count != 1 else ''} (at {where}; first at sample "
        f"{int(first[0])} of {frames} at {sampling_rate} Hz); expected finite values in [-1, 1]"
    )


def check_float_range(samples: np.ndarray, source: str) -> None:
    """Refuse float samples far outside [-1, 1] (peak above MAX_FLOAT_PEAK): integer PCM stored as float."""
    if samples.size == 0:
        return
    peak = max(float(np.max(samples)), -float(np.min(samples)))
    if peak > MAX_FLOAT_PEAK:
        raise ValueError(float_range_message(source, peak))


def float_range_message(source: str, peak: float) -> str:
    """The message of `check_float_range` (shared with the streaming reader, which finds the peak block by block)."""
    return (
        f"{source} has float samples up to {peak:g}; audio is expected in [-1, 1] (peaks up to "
        f"{MAX_FLOAT_PEAK:g} are accepted as overs): integer PCM stored as float? divide by 32768 (int16) "
        "or pass the integer array"
    )


def _decode_error(name: str, error: Exception) -> AudioDecodeError:
    return LibsndfileDecodeError(
        f"could not decode {name} as audio ({error}); supported are the formats of libsndfile "
        f"{soundfile.__libsndfile_version__} (wav, flac, ogg, mp3, ...)"
    )


def _truncation_message(name: str, declared: int, frames: int, rate: int) -> str:
    return (
        f"{name} is truncated: its header declares {declared} frames ({declared / rate:.2f} s) but only {frames} "
        f"({frames / rate:.2f} s) are present"
    )


def _last_frame_decodes(sound: soundfile.SoundFile) -> bool:
    """Seek to the last frame the header promises and read it (a seek, not a decode of the whole file)."""
    try:
        sound.seek(sound.frames - 1)
        return len(sound.read(1, dtype="float32")) == 1
    except (soundfile.LibsndfileError, RuntimeError):
        return False


def _count_decodable_frames(source: Path | BinaryIO, block: int = 1024) -> int:
    """Decode from the start until the data ends or breaks (a truncated FLAC 'loses sync'); frames read.

    Read in blocks no larger than a FLAC frame (4096), so that the frames before the break are all counted."""
    if not isinstance(source, Path):
        source.seek(0)
    count = 0
    with soundfile.SoundFile(source) as sound:
        try:
            while True:
                got = len(sound.read(block, dtype="float32"))
                if got == 0:
                    return count
                count += got
        except (soundfile.LibsndfileError, RuntimeError):
            return count


def _declared_frames(source: Path | BinaryIO, container: str, subtype: str, channels: int) -> int | None:
    """The frame count the header of a WAV/RF64/W64/AIFF/AU file declares (None: none, or not knowable)."""
    width = _SAMPLE_BYTES.get(subtype)
    if width is None:  # compressed subtypes (ADPCM, GSM): bytes do not map to frames
        return None
    if isinstance(source, Path):
        with open(source, "rb") as file:
            return _HEADER_READERS[container](file, width * channels)
    position = source.tell()
    try:
        source.seek(0)
        return _HEADER_READERS[container](source, width * channels)
    finally:
        source.seek(position)


def _wav_frames(file, frame_bytes: int) -> int | None:
    """RIFF/RIFX/RF64/BW64: the size of the 'data' chunk (RF64: from the 'ds64' chunk) / bytes per frame."""
    head = file.read(12)
    if len(head) < 12 or head[8:12] != b"WAVE":
        return None
    order = ">" if head[:4] == b"RIFX" else "<"
    ds64_data_size = None
    position = 12
    while True:
        file.seek(position)
        chunk = file.read(8)
        if len(chunk) < 8:
            return None
        name, size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
        if name == b"ds64":
            content = file.read(28)
            if len(content) < 16:
                return None
            ds64_data_size = struct.unpack("<Q", content[8:16])[0]
            if size == 0x20 and content[-4:] == b"fmt ":
                size = 0x1C  # old libsndfile wrote 0x20 for a 0x1c-byte ds64 chunk (sox works around it too)
        elif name == b"data":
            if size == 0xFFFFFFFF and ds64_data_size is not None:
                size = ds64_data_size
            return None if size in _UNKNOWN_LENGTHS else size // frame_bytes
        position += 8 + size + (size & 1)


def _w64_frames(file, frame_bytes: int) -> int | None:
    """Sony Wave64: 16-byte GUID chunk names, 64-bit sizes that include the 24-byte chunk header, 8-byte aligned."""
    head = file.read(40)
    if len(head) < 40 or head[:4] != b"riff" or head[24:28] != b"wave":
        return None
    position = 40
    while True:
        file.seek(position)
        chunk = file.read(24)
        if len(chunk) < 24:
            return None
        size = struct.unpack("<Q", chunk[16:24])[0]
        if chunk[:4] == b"data":
            return None if size in _UNKNOWN_LENGTHS or size < 24 else (size - 24) // frame_bytes
        if size < 24:
            return None
        position += (size + 7) & ~7


def _aiff_frames(file, frame_bytes: int) -> int | None:
    """AIFF/AIFF-C: numSampleFrames of the 'COMM' chunk."""
    head = file.read(12)
    if len(head) < 12 or head[:4] != b"FORM" or head[8:12] not in (b"AIFF", b"AIFC"):
        return None
    position = 12
    while True:
        file.seek(position)
        chunk = file.read(8)
        if len(chunk) < 8:
            return None
        name, size = chunk[:4], struct.unpack(">I", chunk[4:])[0]
        if name == b"COMM":
            content = file.read(6)
            if len(content) < 6:
                return None
            frames = struct.unpack(">I", content[2:6])[0]
            return None if frames in _UNKNOWN_LENGTHS else frames
        position += 8 + size + (size & 1)


def _au_frames(file, frame_bytes: int) -> int | None:
    """Sun/NeXT AU: the data size of its 24-byte header (0xFFFFFFFF: unknown); big- or little-endian."""
    head = file.read(12)
    if len(head) < 12 or head[:4] not in (b".snd", b"dns."):
        return None
    size = struct.unpack(">I" if head[:4] == b".snd" else "<I", head[8:12])[0]
    return None if size in _UNKNOWN_LENGTHS else size // frame_bytes


_HEADER_READERS = {"WAV": _wav_frames, "WAVEX": _wav_frames, "RF64": _wav_frames, "W64": _w64_frames,
                   "AIFF": _aiff_frames, "AU": _au_frames}


def to_float32(array: np.ndarray) -> np.ndarray:
    """Integer PCM -> float32 in [-1, 1] (int16 / 32768, int32 / 2**31, uint8 centred at 128); floats -> float32."""
    array = np.asarray(array)
    if array.dtype == np.int16:
        return array.astype(np.float32) / 32768.0
    if array.dtype == np.int32:
        return (array.astype(np.float64) / 2**31).astype(np.float32)
    if array.dtype == np.uint8:
        return (array.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    raise TypeError(f"cannot read samples of dtype {array.dtype}; expected float or int16/int32/uint8 PCM")


def to_mono(array: np.ndarray) -> np.ndarray:
    """Average the channels of [samples, channels] (soundfile's layout); 1-D input is returned as it is."""
    if array.ndim == 1:
        return array
    if array.ndim != 2:
        raise ValueError(f"expected [samples] or [samples, channels], got shape {array.shape}")
    return array.mean(axis=1, dtype=np.float32) if array.shape[1] > 1 else array[:, 0]


def resample(array: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    """Resample [samples] or [samples, channels] with soxr (high quality); float32 out."""
    if orig_sampling_rate <= 0 or target_sampling_rate <= 0:
        raise ValueError(f"sampling rates must be positive, got {orig_sampling_rate} -> {target_sampling_rate}")
    if orig_sampling_rate == target_sampling_rate:
        return np.asarray(array, dtype=np.float32)
    return soxr.resample(np.asarray(array, dtype=np.float32), orig_sampling_rate, target_sampling_rate, "HQ")
