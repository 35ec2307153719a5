"""Input checks that never pass bad data silently (issue 12): truncated files, integer-scale floats, NaN/Inf named
at the file's own rate, clips shorter than a model's minimum, directories; URL inputs keep transformers' path."""

from __future__ import annotations

import struct
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from transformers import pipeline

from audiozoo.audio.io import AudioDecodeError, AudioFileInfo, check_audio_file, load_audio
from audiozoo.pipelines import decode_audio_input

from conftest import EXAMPLE_CLIP, REPO

SHARED_CLIP = REPO.parent / "shared" / "audio" / "clip_a_32k.wav"


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    samples, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    assert rate == 16000
    return samples


@pytest.fixture(scope="module")
def classifier(converted_dir):
    return pipeline("audio-classification", model=str(converted_dir("beats_tiny_finetuned")), dtype=torch.float32)


@pytest.fixture(scope="module")
def detector(converted_dir):
    return pipeline("sound-event-detection", model=str(converted_dir("sed_atstf_tiny")), dtype=torch.float32)


def cut(source: Path, destination: Path, size: int) -> Path:
    """What `head -c SIZE source > destination` writes."""
    destination.write_bytes(source.read_bytes()[:size])
    return destination


# ---- truncated files -------------------------------------------------------------------------------------------

def test_truncated_wav_is_an_error_naming_both_lengths(tmp_path):
    # the example clip: 44-byte header, 64000 frames of 16-bit mono; keep 1 s of it
    path = cut(EXAMPLE_CLIP, tmp_path / "cut.wav", 44 + 2 * 16000)
    message = r"cut.wav is truncated: its header declares 64000 frames \(4.00 s\) but only 16000 \(1.00 s\) are present"
    with pytest.raises(AudioDecodeError, match=message + "; pass --allow_truncated to use them"):
        check_audio_file(path)
    with pytest.raises(AudioDecodeError, match=message):
        load_audio(path)
    with pytest.raises(AudioDecodeError, match=message):
        decode_audio_input(str(path), 16000)
    info = check_audio_file(path, allow_truncated=True)
    assert info == AudioFileInfo(path, 16000, 16000, 1, 64000)
    samples, rate = load_audio(path, allow_truncated=True)
    assert rate == 16000 and samples.shape == (16000,)
    full, _ = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    np.testing.assert_array_equal(samples, full[:16000])
    assert decode_audio_input(str(path), 16000, allow_truncated=True).shape == (16000,)


@pytest.mark.skipif(not SHARED_CLIP.exists(), reason="needs ../shared/audio")
def test_truncated_shared_clip_as_in_the_issue(tmp_path):
    """The issue's case: a 10 s file of which 3.3 s are there (the header has a LIST chunk before 'data')."""
    path = cut(SHARED_CLIP, tmp_path / "clip.wav", 211278)
    with pytest.raises(AudioDecodeError, match=r"declares 320000 frames \(10.00 s\) but only 105600 \(3.30 s\)"):
        check_audio_file(path)
    assert check_audio_file(SHARED_CLIP).declared_frames == 320000


@pytest.mark.parametrize("extension,container,subtype,channels", [
    ("wav", "WAV", "PCM_24", 2), ("wav", "WAV", "FLOAT", 1), ("wav", "WAVEX", "PCM_16", 2), ("rf64", "RF64", "PCM_16", 1),
    ("w64", "W64", "PCM_16", 1), ("aiff", "AIFF", "PCM_16", 2), ("au", "AU", "PCM_16", 1), ("flac", "FLAC", "PCM_16", 1),
    ("mp3", "MP3", "MPEG_LAYER_III", 1),
])
def test_truncation_is_found_in_every_container(tmp_path, clip, extension, container, subtype, channels):
    samples = np.stack([clip, 0.5 * clip], axis=1)[:, :channels]
    full = tmp_path / f"full.{extension}"
    soundfile.write(full, samples, 16000, format=container, subtype=subtype)
    info = check_audio_file(full)
    assert info.declared_frames == info.frames == len(load_audio(full)[0]) and not info.truncated
    assert abs(info.frames - 64000) < 2000  # mp3 adds encoder delay
    short = cut(full, tmp_path / f"short.{extension}", full.stat().st_size // 3)
    with pytest.raises(AudioDecodeError, match=rf"short.{extension} is truncated: its header declares {info.frames} "
                                               r"frames .* but only \d+ .* are present"):
        check_audio_file(short)
    kept = check_audio_file(short, allow_truncated=True)
    assert kept.declared_frames == info.frames and 0 < kept.frames < info.frames
    samples, _ = load_audio(short, allow_truncated=True)
    assert len(samples) == kept.frames
    with pytest.raises(AudioDecodeError, match="is truncated"):
        decode_audio_input(short.read_bytes(), 16000)
    assert len(decode_audio_input(short.read_bytes(), 16000, allow_truncated=True)) == kept.frames


def test_ogg_declares_no_length(tmp_path, clip):
    """Ogg has no length in a header (libsndfile reads the last page's position): nothing to compare."""
    full = tmp_path / "full.ogg"
    soundfile.write(full, clip, 16000, format="OGG", subtype="VORBIS")
    assert check_audio_file(full) == AudioFileInfo(full, 64000, 16000, 1, None)
    short = check_audio_file(cut(full, tmp_path / "short.ogg", full.stat().st_size // 2))
    assert short.declared_frames is None and 0 < short.frames < 64000 and not short.truncated


def test_header_only_and_streamed_wavs(tmp_path):
    with pytest.raises(AudioDecodeError, match=r"declares 64000 frames .* but only 0"):
        check_audio_file(cut(EXAMPLE_CLIP, tmp_path / "header.wav", 44))
    with pytest.raises(AudioDecodeError, match=r"contains no samples \(.*declares 64000 frames"):
        check_audio_file(tmp_path / "header.wav", allow_truncated=True)
    # writers that stream (ffmpeg, sox to a pipe) leave a placeholder length: that is no truncation
    data = bytearray(EXAMPLE_CLIP.read_bytes())
    for placeholder in (0xFFFFFFFF, 0x7FFFF000):
        data[40:44] = struct.pack("<I", placeholder)
        streamed = tmp_path / f"streamed_{placeholder:x}.wav"
        streamed.write_bytes(bytes(data))
        assert check_audio_file(streamed) == AudioFileInfo(streamed, 64000, 16000, 1, None)


def test_pipelines_refuse_truncated_files_unless_allowed(classifier, detector, tmp_path):
    path = str(cut(EXAMPLE_CLIP, tmp_path / "cut.wav", 44 + 2 * 32000))
    for run in (classifier, detector):
        with pytest.raises(AudioDecodeError, match="cut.wav is truncated"):
            run(path)
    assert len(classifier(path, allow_truncated=True, top_k=2)) == 2
    result = detector(path, allow_truncated=True, return_frame_probabilities=True)
    assert result["duration"] == pytest.approx(2.0)


# ---- directories and missing files -----------------------------------------------------------------------------

def test_a_directory_is_reported_as_a_directory(tmp_path, classifier, detector):
    for call in (check_audio_file, load_audio, lambda path: decode_audio_input(path, 16000), classifier, detector):
        with pytest.raises(IsADirectoryError, match=f"{tmp_path} is a directory, not an audio file"):
            call(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="audio file not found: .*absent.wav"):
        check_audio_file(tmp_path / "absent.wav")


# ---- integer-scale floats --------------------------------------------------------------------------------------

def test_float_input_at_integer_scale_is_refused(clip, tmp_path, classifier, detector):
    int_scale = clip * 32767
    hint = r"integer PCM stored as float\? divide by 32768 \(int16\) or pass the integer array"
    with pytest.raises(ValueError, match=rf"the array has float samples up to \d+.*{hint}"):
        decode_audio_input(int_scale, 16000)
    with pytest.raises(ValueError, match=hint):
        decode_audio_input(torch.from_numpy(int_scale.astype(np.float64)), 16000)
    with pytest.raises(ValueError, match=hint):
        decode_audio_input({"array": int_scale, "sampling_rate": 16000, "path": "x.wav"}, 16000)
    for run in (classifier, detector):
        with pytest.raises(ValueError, match=hint):
            run(int_scale, sampling_rate=16000)
    float_file = tmp_path / "int_scale_float.wav"
    soundfile.write(float_file, int_scale, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=rf"int_scale_float.wav has float samples up to .*{hint}"):
        decode_audio_input(str(float_file), 16000)
    # what stays accepted: integer arrays (scaled), and floats a little over full scale (float files carry overs)
    np.testing.assert_allclose(decode_audio_input(np.round(int_scale).astype(np.int16), 16000), clip, atol=1e-4)
    hot = clip / np.abs(clip).max() * 1.5
    np.testing.assert_array_equal(decode_audio_input(hot, 16000), hot)


# ---- NaN / Inf -------------------------------------------------------------------------------------------------

def test_one_inf_sample_is_one_sample_at_the_files_own_rate(tmp_path, clip):
    at_44k = np.zeros(44100, dtype=np.float32)
    at_44k[22050] = np.inf
    path = tmp_path / "one_inf.wav"
    soundfile.write(path, at_44k, 44100, subtype="FLOAT")
    message = r"one_inf.wav has 1 NaN/Inf sample \(at 0.5000 s; first at sample 22050 of 44100 at 44100 Hz\)"
    with pytest.raises(ValueError, match=message):
        decode_audio_input(str(path), 16000)
    with pytest.raises(ValueError, match=message):
        load_audio(path, sampling_rate=16000)
    with pytest.raises(ValueError, match=r"the array has 1 NaN/Inf sample \(at 0.5000 s; .* at 44100 Hz"):
        decode_audio_input(at_44k, 16000, sampling_rate=44100)
    stereo = np.stack([clip, clip], axis=1)
    stereo[[100, 200, 300, 400], 1] = np.nan
    with pytest.raises(ValueError, match=r"the audio dict has 4 NaN/Inf samples \(at 0.0063 s, 0.0125 s, 0.0187 s, "
                                         r"\.\.\.; first at sample 100"):
        decode_audio_input({"array": stereo, "sampling_rate": 16000}, 16000)


def test_pipelines_name_the_bad_item_of_a_list(classifier, detector, clip):
    bad = clip.copy()
    bad[8000] = np.nan
    with pytest.raises(ValueError, match=r"pipeline input 1 has 1 NaN/Inf sample \(at 0.5000 s"):
        classifier([clip, bad])
    with pytest.raises(ValueError, match=r"pipeline input 2 has 1 NaN/Inf sample"):
        detector([clip, clip, bad])
    # good lists still work, and in order
    assert [len(result) for result in classifier([clip, clip[:8000]], top_k=2)] == [2, 2]


# ---- minimum lengths -------------------------------------------------------------------------------------------

def _family_feature_extractors():
    from audiozoo import AstFeatureExtractor, BeatsFeatureExtractor, ByolAFeatureExtractor, EatFeatureExtractor
    from audiozoo.models.asit.feature_extraction_asit import AsitFeatureExtractor
    from audiozoo.models.atst_frame.feature_extraction_atst_frame import AtstFrameFeatureExtractor
    from audiozoo.models.fpasst.feature_extraction_fpasst import PasstMelFeatureExtractor
    from audiozoo.models.m2d.feature_extraction_m2d import M2dFeatureExtractor

    return {
        "beats": (BeatsFeatureExtractor(), 2800), "ast": (AstFeatureExtractor(), 400), "eat": (EatFeatureExtractor(), 400),
        "byol_a_v1": (ByolAFeatureExtractor.for_version(1), 1120), "byol_a_v2": (ByolAFeatureExtractor.for_version(2), 513),
        "atst_frame": (AtstFrameFeatureExtractor(), 513), "fpasst": (PasstMelFeatureExtractor(), 258),
        "frame_mn": (PasstMelFeatureExtractor(periodic_window=False), 258),
        # one 16-frame patch: a folder saved with the older, smaller min_samples gets the real minimum too
        "asit": (AsitFeatureExtractor(), 2800), "asit_old_folder": (AsitFeatureExtractor(min_samples=400), 2800),
        "m2d": (M2dFeatureExtractor(), 2400), "m2d_old_folder": (M2dFeatureExtractor(min_samples=201), 2400),
    }


@pytest.mark.parametrize("family", list(_family_feature_extractors()))
def test_minimum_samples_agrees_with_the_feature_extractor(family):
    feature_extractor, expected = _family_feature_extractors()[family]
    assert feature_extractor.minimum_samples == expected
    feature_extractor(np.zeros(expected, dtype=np.float32), sampling_rate=16000)
    with pytest.raises(ValueError, match=rf"has {expected - 1} samples .* at least {expected} samples"):
        feature_extractor(np.zeros(expected - 1, dtype=np.float32), sampling_rate=16000)


@pytest.mark.parametrize("case", ["sed_asit_tiny", "sed_m2d_tiny"])
def test_minimum_samples_is_what_the_model_takes(converted_dir, case):
    """ASiT and M2D need one 16-frame patch: their front ends used to accept clips the model then refused."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioFrameClassification

    folder = converted_dir(case)
    feature_extractor = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModelForAudioFrameClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        model(**feature_extractor(np.zeros(feature_extractor.minimum_samples, np.float32), sampling_rate=16000))
    with pytest.raises(ValueError, match="at least"):
        feature_extractor(np.zeros(feature_extractor.minimum_samples - 1, np.float32), sampling_rate=16000)


@pytest.mark.parametrize("frames", [1, 10])
def test_both_pipelines_refuse_clips_shorter_than_the_minimum(tmp_path, clip, classifier, detector, frames):
    path = tmp_path / f"tiny_{frames}.wav"
    soundfile.write(path, clip[:frames], 16000, subtype="PCM_16")
    seconds = f"{frames / 16000:.4f}"
    with pytest.raises(ValueError, match=rf"tiny_{frames}.wav is too short: {frames} samples \({seconds} s at 16000 Hz\)"
                                         r"; the model needs at least 2800 samples \(0.1750 s at 16000 Hz\)"):
        classifier(str(path))
    with pytest.raises(ValueError, match=rf"tiny_{frames}.wav is too short: .* at least 513 samples \(0.0321 s"):
        detector(str(path))
    with pytest.raises(ValueError, match=r"the array is too short"):
        detector(clip[:frames], sampling_rate=16000)


def test_minimum_is_counted_after_resampling_but_reported_at_the_files_rate(tmp_path, clip, classifier):
    path = tmp_path / "short_8k.wav"
    soundfile.write(path, clip[:2000], 8000, subtype="PCM_16")  # 0.25 s: 4000 samples at 16 kHz
    assert len(classifier(str(path), top_k=1)) == 1
    soundfile.write(path, clip[:1000], 8000, subtype="PCM_16")  # 0.125 s
    with pytest.raises(ValueError, match=r"1000 samples \(0.1250 s at 8000 Hz\); the model needs at least 2800"):
        classifier(str(path))


def test_shortest_accepted_clip_gives_events_within_it(detector, clip):
    events = detector(np.full(513, 0.5, dtype=np.float32), sampling_rate=16000, threshold=0.0)
    assert events and all(0.0 <= event["onset"] < event["offset"] <= 513 / 16000 for event in events)


# ---- URLs and the parent's other inputs ------------------------------------------------------------------------

def test_url_inputs_take_transformers_own_path(classifier, clip, monkeypatch):
    """The parent fetches URLs (httpx) and decodes them with ffmpeg; the subclass must hand them over unchanged."""
    import transformers.pipelines.audio_classification as parent_module

    fetched, decoded = [], []
    payload = b"the bytes of an audio file"

    def get(url, follow_redirects=False):
        fetched.append(url)
        return types.SimpleNamespace(content=payload)

    def ffmpeg_read(data, sampling_rate):
        decoded.append((data, sampling_rate))
        return clip.copy()

    monkeypatch.setattr(parent_module, "httpx", types.SimpleNamespace(get=get))
    monkeypatch.setattr(parent_module, "ffmpeg_read", ffmpeg_read)
    url = "https://example.org/clip.flac"
    results = classifier(url, top_k=3)
    assert fetched == [url] and decoded == [(payload, 16000)]
    expected = classifier(clip, top_k=3)
    assert [entry["label"] for entry in results] == [entry["label"] for entry in expected]
    assert [entry["score"] for entry in results] == pytest.approx([entry["score"] for entry in expected], abs=1e-6)
    # the CLI and decode_audio_input still do not fetch
    with pytest.raises(ValueError, match="URLs are not fetched"):
        decode_audio_input(url, 16000)


def test_formats_only_ffmpeg_reads_go_to_the_parent_where_ffmpeg_is_installed(classifier, clip, tmp_path, monkeypatch):
    import shutil

    import transformers.pipelines.audio_classification as parent_module

    m4a = tmp_path / "clip.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(AudioDecodeError, match="could not decode .*clip.m4a"):
        classifier(str(m4a))
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(parent_module, "ffmpeg_read", lambda data, sampling_rate: clip.copy())
    assert len(classifier(str(m4a), top_k=2)) == 2
    # a corrupt file in a format libsndfile reads is still our error, not handed to ffmpeg
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" + bytes(100))
    with pytest.raises(AudioDecodeError, match="corrupt.wav"):
        classifier(str(corrupt))
