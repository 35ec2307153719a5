"""The HEAR 2021 API (Holistic Evaluation of Audio Representations) over any converted audiozoo folder.

    import audiozoo.hear as hear
    model = hear.load_model("converted/beats-iter3")  # a converted folder or Hub id; "" = the bundled default
    scene = hear.get_scene_embeddings(audio, model)    # [n_sounds, model.scene_embedding_size]
    frames, times = hear.get_timestamp_embeddings(audio, model)
    # frames: [n_sounds, T, model.timestamp_embedding_size]; times: [n_sounds, T] in ms

`audio` is a float tensor [n_sounds, n_samples] at `model.sample_rate` (16000 for every family). The module can be
given to the HEAR tools by name (`hear-validator audiozoo.hear -m FOLDER`, heareval's `--model FOLDER`).

What the API asks, and where (the sources read for this module, in our words):
- The HEAR API page, https://hearbenchmark.com/hear-api.html: `load_model(model_file_path)` returns a PyTorch (or
  TensorFlow) module whose attributes are `sample_rate`, `scene_embedding_size` (int) and
  `timestamp_embedding_size` (int); `get_timestamp_embeddings(audio, model)` returns embeddings at regular intervals,
  each centred on its timestamp, with the timestamps in milliseconds (the hop is the model's choice; <= 50 ms is a
  suggestion); `get_scene_embeddings(audio, model)` returns one embedding per clip; audio is n_sounds x n_samples of
  mono audio in [-1, 1].
- The HEAR 2021 rules, https://neuralaudio.ai/hear2021-rules.html: audio of any length up to 20 minutes, passed as a
  tensor; embeddings for 20 minutes of audio within 16 GB of GPU memory; the model declares the rate it expects and
  is not expected to resample.
- The baseline, github.com/hearbenchmark/hear-baseline (hearbaseline/naive.py, hearbaseline/util.py): outputs are
  float32, embeddings (n_sounds, n_timestamps, D) and timestamps (n_sounds, n_timestamps); the caller has padded or
  trimmed all sounds of a batch to one length; the baseline's scene embedding is the mean of its timestamp
  embeddings.
- The validator, github.com/hearbenchmark/hear-validator (hearvalidator/validate.py): float32; 3-D / 2-D outputs of
  matching shapes; sizes equal to the attributes; the spacing of timestamps constant within 1 ms; the last timestamp
  not after the end of the audio and not more than two hops before it; it moves the module with `.to(device)` and
  passes audio on that device.
- The evaluation kit, github.com/hearbenchmark/hear-eval-kit (heareval/embeddings/task_embeddings.py): it calls the
  two functions under `torch.no_grad()` on batches of a task's files in loader order, so a sound's embedding must not
  depend on the other sounds of its batch.

How this module meets it:
- `load_model(path_or_hub_id="")` loads the folder's feature extractor and `AutoModel` (the encoder; for a classifier
  folder, the classifier's encoder, its head left out) in float32 and eval mode; "" loads the offline default model
  bundled with the package. The sizes are read from the config, known before any audio is run.
- Timestamp embeddings are the encoder's per-time-step features: the package's frame features (patch tokens
  averaged over their frequency patches, as the frame heads and `audiozoo embed --level frame` do), or the encoder's
  own frame sequence where it has one. Step t stands for the audio [t * P, (t + 1) * P) of the family's step P
  (nominally: a step's analysis frames reach a little further, e.g. AST's 160 ms patches lie 100 ms apart) and its
  timestamp is that interval's centre, (t + 0.5) * P ms (the first is P / 2), computed in float64 so that it never
  drifts. Steps whose centre lies past the end of the audio are dropped, but every sound keeps at least one.
- Audio of any length. Families trained on fixed-length input cut each sound into windows of that length: AST and
  EAT (`max_length` frames, 10.24 s), ATST-Frame and fPaSST (10 s; both refuse longer input), and ASiT, M2D and
  frame-MobileNet, which PretrainedSED trained and runs on 10 s windows too. Windows start S * P apart, S being the
  steps one window yields, so that the steps of all windows form one regular grid (S * P is the window less the
  analysis frames of its last step: 10.1 s for AST's 10.24 s input, 9.92 s for ASiT and M2D, 10 s for the others);
  their steps are concatenated. The last window (and a sound shorter than one window) is completed as the original
  completes a short clip: AST's and EAT's front ends pad their filterbank to `max_length` frames, the PretrainedSED
  models get zero samples up to 10 s, as the sound-event-detection pipeline (and the PretrainedSED inference) does.
  BEATs takes any length, but its attention is quadratic and it was trained on 10 s clips: longer sounds go in
  windows of 62 steps (9.92 s, what a 10 s clip yields), the last one as long as the audio left. BYOL-A is
  convolutional with per-frame outputs and runs on the whole sound. A window shorter than the family's minimum input
  (BEATs 0.175 s, BYOL-A 0.07 s, AST and EAT 25 ms) is zero-padded to it. The windows of all sounds go through the
  encoder `model.window_batch_size` at a time, so 20 minutes of audio need no more memory than a few windows (BYOL-A:
  than its whole sound, which a convolutional stack of its size holds).
- Batch independence: the caller's sounds all have one length, so no sound is ever padded because of another; every
  window's features are computed on their own (one feature-extractor call per window: no front end sees another
  sound), and no encoder mixes the rows of a batch in eval mode. A sound's embeddings therefore equal those it gets
  alone up to float32 rounding (tested to 1e-5 of their scale), and exactly with `window_batch_size=1`.
- Outputs are float32 tensors on the module's device; audio on another device is moved there.

Per family (P: the hop between timestamps; windows; how `get_scene_embeddings` pools):
- audiozoo-beats, audiozoo-beats-tokenizer: P = 160 ms (16 filterbank frames; a step's 8 frequency patches averaged).
  Windows of at most 62 steps (9.92 s), the last one not padded. Scene: the mean of the frames, which is the mean of
  all patch tokens, what BEATs' fine-tuned head pools.
- audiozoo-ast: P = time_stride x 10 ms (100 ms for the 10/10 models; a step's frequency rows averaged). Windows of
  max_length frames (10.24 s; the last one's filterbank padded), S = the time patches (101: windows start 10.1 s
  apart). Scene: each window's (cls + distillation) / 2 token, the original's pooling, averaged over the windows
  weighted by the steps each window keeps.
- audiozoo-eat: P = 160 ms. Windows of max_length frames (10.24 s; filterbank padded as AST's), S = 64. Scene: each
  window's CLS token (EAT's utterance embedding, what its classifier reads), weighted as for AST.
- audiozoo-byol-a: P = 80 ms (v1) or 40 ms (v2). No windows: convolutional, the whole sound in one pass. Scene: the
  mean plus the maximum of the frames over time, the original's embedding.
- audiozoo-atst-frame, audiozoo-fpasst: P = 40 ms. Windows of 10 s, zero-padded, S = 250 (both refuse longer input).
  Scene: the mean of the frames.
- audiozoo-frame-mn: P = 40 ms. Windows of 10 s, zero-padded, S = 250 (its squeeze-excitation gates average over the
  whole input, so the input length matters). Scene: the mean of the frames.
- audiozoo-asit: P = 160 ms (CLS left out; a step's 8 frequency patches averaged). Windows of 10 s, zero-padded,
  S = 62 (its positions are re-gridded to the input length; trained on 10 s). Scene: the mean of the frames.
- audiozoo-m2d: P = 160 ms (a step's 5 frequency tokens concatenated, M2D's own frame feature: D = 5 x hidden).
  Windows of 10 s, zero-padded, S = 62 (one encoder chunk). Scene: the mean of the frames.

The scene embedding is the HEAR baseline's mean of the timestamp embeddings unless the original defines a clip
embedding of the same encoder (AST, EAT, BYOL-A); `scene_embedding_size == timestamp_embedding_size` for every family.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel
from transformers.utils import logging as transformers_logging

from .default_model import default_model_path
from .families import family_of, register_models
from .layers.heads import time_major_patches_to_frames
from .layers.sed_head import SedHeadSettings
from .runtime import check_device

# BEATs was pre-trained and fine-tuned on 10 s AudioSet clips; longer sounds go through it in windows of this length
BEATS_WINDOW_SECONDS = 10.0


@dataclass(frozen=True)
class Windowing:
    """How a family's encoder sees a sound.

    step_samples: samples between consecutive time steps (the timestamp hop P).
    steps_per_window: steps taken from each window (S); windows start `S * step_samples` apart. None: the whole
        sound in one pass.
    window_samples: input samples of one window (S steps plus the analysis frames of the last one).
    padding: how a window shorter than `window_samples` (the last ones) is completed. "waveform": zero samples up
        to `window_samples` (the PretrainedSED inference); "filterbank": the feature extractor pads its filterbank
        to the model's fixed `max_length` frames, as the AST and EAT originals pad short clips; "none": the window is
        as long as the audio left (models that take any length). Every window of the first two kinds yields S steps.
    min_samples: the shortest input the front end and encoder take; shorter windows are zero-padded to it.
    scene_pooling: "mean" (of the timestamp embeddings), "mean+max" (their mean plus their maximum over time) or
        "pooled" (the encoder's pooled token of each window, averaged over windows weighted by the steps each keeps).
    """

    step_samples: int
    steps_per_window: int | None
    window_samples: int | None
    padding: str
    min_samples: int
    scene_pooling: str

    @property
    def hop_samples(self) -> int:
        return self.steps_per_window * self.step_samples


def _ceil_half(value: int) -> int:
    return -(-value // 2)


def family_windowing(config, feature_extractor) -> Windowing:
    """The `Windowing` of a converted model, from its config and feature extractor (no audio is run)."""
    model_type = config.model_type
    rate = int(feature_extractor.sampling_rate)
    if model_type in ("audiozoo-beats", "audiozoo-beats-tokenizer"):
        fbank = feature_extractor.fbank
        step = config.patch_size * fbank.frame_shift
        steps = fbank.num_frames(round(BEATS_WINDOW_SECONDS * rate)) // config.patch_size
        window = steps * step + fbank.frame_length - fbank.frame_shift
        return Windowing(step, steps, window, "none", _minimum_samples(feature_extractor), "mean")
    if model_type in ("audiozoo-ast", "audiozoo-eat"):
        fbank = feature_extractor.fbank
        window = fbank.frame_length + (config.max_length - 1) * fbank.frame_shift
        if model_type == "audiozoo-ast":
            step, steps = config.time_stride * fbank.frame_shift, config.time_patches
        else:
            step, steps = config.patch_size * fbank.frame_shift, config.max_length // config.patch_size
        return Windowing(step, steps, window, "filterbank", _minimum_samples(feature_extractor), "pooled")
    if model_type == "audiozoo-byol-a":
        step = config.time_reduction * feature_extractor.hop_length
        return Windowing(step, None, None, "none", _minimum_samples(feature_extractor), "mean+max")
    # the PretrainedSED encoders: windows of the prediction head's length (10 s), as trained and as the pipeline runs
    window = round(SedHeadSettings.from_dict(getattr(config, "sed_head", None)).window_seconds * rate)
    if model_type == "audiozoo-atst-frame":
        hop = feature_extractor.hop_length
        step = config.patch_frames * hop
        steps = min((window // hop + 1) // config.patch_frames, config.max_patches)  # centred frames
    elif model_type in ("audiozoo-fpasst", "audiozoo-frame-mn"):
        hop = feature_extractor.hop_length
        step = 4 * hop  # two stride-2 stages in time
        steps = _ceil_half(_ceil_half(1 + (window - 1) // hop))  # PaSST mel frames, then the two halvings
        if model_type == "audiozoo-fpasst":
            steps = min(steps, config.max_patches)
    elif model_type == "audiozoo-asit":
        fbank = feature_extractor.transform  # Kaldi filterbank
        step = config.patch_size * fbank.frame_shift
        steps = fbank.num_frames(window) // config.patch_size
    elif model_type == "audiozoo-m2d":
        hop = feature_extractor.hop_length
        step = config.patch_size * hop
        steps = min(window // hop + 1, config.unit_frames) // config.patch_size  # centred frames, one chunk
    else:
        raise ValueError(f"no HEAR windowing for model type {model_type!r}")
    return Windowing(step, steps, window, "waveform", window, "mean")


def _minimum_samples(feature_extractor) -> int:
    for name in ("minimum_samples", "min_samples"):
        value = getattr(feature_extractor, name, None)
        if value is not None:
            return int(value)
    return 1


class HearModel(nn.Module):
    """A converted encoder with its feature extractor behind the HEAR 2021 API (made by `load_model`).

    Attributes: `sample_rate`, `scene_embedding_size`, `timestamp_embedding_size` (the HEAR attributes, ints);
    `windowing` (time step, windows, scene pooling of its family); `window_batch_size` (windows per encoder pass).
    `.to(device)` moves the encoder; features are computed on the encoder's device.
    """

    def __init__(self, feature_extractor, encoder: nn.Module, window_batch_size: int = 8):
        super().__init__()
        config = encoder.config
        family_of(config.model_type)
        self.feature_extractor = feature_extractor
        self.encoder = encoder.eval()
        self.model_type: str = config.model_type
        self.windowing = family_windowing(config, feature_extractor)
        self.sample_rate: int = int(feature_extractor.sampling_rate)
        size = int(getattr(encoder, "output_size", None) or config.hidden_size)
        self.timestamp_embedding_size: int = size
        self.scene_embedding_size: int = size
        if window_batch_size < 1:
            raise ValueError(f"window_batch_size must be at least 1, got {window_batch_size}")
        self.window_batch_size = int(window_batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    @property
    def timestamp_hop_ms(self) -> float:
        """Milliseconds between consecutive timestamps."""
        return self.windowing.step_samples * 1000.0 / self.sample_rate

    def get_timestamp_embeddings(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return get_timestamp_embeddings(audio, self)

    def get_scene_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        return get_scene_embeddings(audio, self)

    def extra_repr(self) -> str:
        return (f"model_type={self.model_type!r}, sample_rate={self.sample_rate}, "
                f"embedding_size={self.timestamp_embedding_size}, hop_ms={self.timestamp_hop_ms:g}")

    # --- one batch of windows through the front end and the encoder

    def _frame_features(self, output) -> torch.Tensor:
        if self.model_type == "audiozoo-asit":  # CLS, then time-major patches: average each step's frequency patches
            config = self.encoder.config
            bands = config.num_mel_bins // config.patch_size
            return time_major_patches_to_frames(output.last_hidden_state[:, 1:], bands)[0]
        if hasattr(self.encoder, "frame_features"):
            return self.encoder.frame_features(output)[0]
        return output.last_hidden_state  # one feature vector per step already (ATST-Frame, fPaSST, M2D, frame-MN)

    def _encode(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[R, samples] windows -> ([R, steps, D] frame features, [R, D] pooled tokens or None)."""
        frames, pooled = [], []
        dtype = next(self.encoder.parameters()).dtype
        for start in range(0, rows.shape[0], self.window_batch_size):
            # one front-end call per window, so that no window's features depend on another's
            inputs = torch.cat([
                self.feature_extractor(row, sampling_rate=self.sample_rate, return_tensors="pt",
                                       device=rows.device)["input_values"]
                for row in rows[start : start + self.window_batch_size]
            ])
            output = self.encoder(input_values=inputs.to(dtype), return_dict=True)
            frames.append(self._frame_features(output).float())
            if self.windowing.scene_pooling == "pooled":
                pooled.append(output.pooler_output.float())
        return torch.cat(frames), (torch.cat(pooled) if pooled else None)

    @torch.no_grad()
    def _embed(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked audio [n, N] -> (timestamp embeddings [n, T, D], scene embeddings [n, D])."""
        plan = self.windowing
        sounds, length = audio.shape
        # the steps whose centre (t + 0.5) * P lies within the audio; at least one
        needed = max(1, (2 * length + plan.step_samples) // (2 * plan.step_samples))
        if plan.steps_per_window is None:
            windows = [audio]
        else:
            windows = []
            for index in range(-(-needed // plan.steps_per_window)):
                start = index * plan.hop_samples
                windows.append(audio[:, start : start + plan.window_samples])
                if plan.padding == "none" and windows[-1].shape[1] < plan.window_samples:
                    break  # it holds the rest of the audio
        windows = [
            _fit(window, plan.window_samples if plan.padding == "waveform" else max(window.shape[1], plan.min_samples))
            for window in windows
        ]

        # the windows of all sounds, those of one length together, through the encoder
        by_length: dict[int, list[int]] = {}
        for index, window in enumerate(windows):
            by_length.setdefault(window.shape[1], []).append(index)
        window_frames, window_pooled = [None] * len(windows), [None] * len(windows)
        for samples, indices in by_length.items():
            rows = torch.stack([windows[index] for index in indices], dim=1).reshape(-1, samples)
            frames, pooled = self._encode(rows)
            frames = frames.reshape(sounds, len(indices), frames.shape[1], frames.shape[2])
            for position, index in enumerate(indices):
                window_frames[index] = frames[:, position]
                if pooled is not None:
                    window_pooled[index] = pooled.reshape(sounds, len(indices), -1)[:, position]

        # each window's first S steps (the last "none" window: all it has), up to the steps needed
        parts, kept = [], []
        for index, frames in enumerate(window_frames):
            steps = frames.shape[1]
            if plan.steps_per_window is not None and (plan.padding != "none" or index < len(windows) - 1):
                if steps < plan.steps_per_window:
                    raise RuntimeError(
                        f"{self.model_type}: a window of {windows[index].shape[1]} samples gave {steps} time steps, "
                        f"{plan.steps_per_window} expected; the HEAR windowing of this family is out of date"
                    )
                steps = plan.steps_per_window
            keep = max(0, min(steps, needed - sum(kept)))
            parts.append(frames[:, :keep])
            kept.append(keep)
        frames = torch.cat(parts, dim=1)

        if plan.scene_pooling == "mean":
            scene = frames.mean(dim=1)
        elif plan.scene_pooling == "mean+max":
            scene = frames.mean(dim=1) + frames.amax(dim=1)
        else:  # the windows' pooled tokens, weighted by the steps each keeps
            weights = torch.tensor(kept, dtype=torch.float32, device=frames.device)
            scene = (torch.stack(window_pooled, dim=1) * weights[None, :, None]).sum(dim=1) / weights.sum()
        return frames.contiguous(), scene

    def _timestamps(self, sounds: int, steps: int, device: torch.device) -> torch.Tensor:
        """Centres of steps 0..steps-1 in ms, [sounds, steps] float32 (computed in float64: no drift)."""
        centres = (torch.arange(steps, dtype=torch.float64) + 0.5) * self.timestamp_hop_ms
        return centres.to(torch.float32).to(device).expand(sounds, steps).contiguous()


def _fit(audio: torch.Tensor, samples: int) -> torch.Tensor:
    """[n, N] -> [n, samples]: cut, or zero-padded at the end."""
    if audio.shape[1] >= samples:
        return audio[:, :samples]
    return nn.functional.pad(audio, (0, samples - audio.shape[1]))


def _checked_audio(audio, model) -> torch.Tensor:
    """The HEAR input contract, with messages that say what was expected."""
    if not isinstance(model, HearModel):
        raise TypeError(f"model must come from audiozoo.hear.load_model, got {type(model).__name__}")
    if not isinstance(audio, torch.Tensor):
        raise TypeError(
            f"audio must be a torch.Tensor [n_sounds, n_samples] of mono samples at {model.sample_rate} Hz, got "
            f"{type(audio).__name__} (numpy: torch.from_numpy(array))"
        )
    if audio.ndim != 2:
        raise ValueError(
            f"audio must be 2-D [n_sounds, n_samples] (mono, {model.sample_rate} Hz), got shape {tuple(audio.shape)}; "
            "one sound: audio[None]; several channels: average them first"
        )
    if not audio.is_floating_point():
        raise TypeError(
            f"audio must be floating point with samples in [-1, 1], got dtype {audio.dtype}; "
            "int16 PCM: audio.float() / 32768"
        )
    if audio.shape[0] == 0:
        raise ValueError(f"audio holds no sounds (shape {tuple(audio.shape)})")
    if audio.shape[1] == 0:
        raise ValueError(f"audio holds sounds of 0 samples (shape {tuple(audio.shape)}); give at least one sample")
    audio = audio.detach().to(device=model.device, dtype=torch.float32)
    finite = torch.isfinite(audio).all(dim=1)
    if not bool(finite.all()):
        bad = (~finite).nonzero().flatten().tolist()
        raise ValueError(f"sound(s) {bad[:10]} hold NaN or Inf samples; expected finite samples in [-1, 1]")
    return audio


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR timestamp embeddings.

    Args:
        audio: [n_sounds, n_samples] float tensor of mono audio in [-1, 1] at `model.sample_rate`.
        model: from `load_model`.

    Returns:
        embeddings: [n_sounds, T, model.timestamp_embedding_size] float32 on the model's device, one per time step.
        timestamps: [n_sounds, T] float32, the centre of each step in milliseconds ((t + 0.5) * hop).
    """
    audio = _checked_audio(audio, model)
    frames, _ = model._embed(audio)
    return frames, model._timestamps(frames.shape[0], frames.shape[1], frames.device)


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """HEAR scene embeddings: [n_sounds, model.scene_embedding_size] float32 on the model's device, pooled from the
    timestamp embeddings (or the windows' pooled tokens) as the module's list of families says."""
    audio = _checked_audio(audio, model)
    return model._embed(audio)[1]


def load_model(path_or_hub_id: str | os.PathLike = "", *, device: str | torch.device | None = None,
               window_batch_size: int = 8) -> HearModel:
    """A converted folder (or Hub id) as a HEAR model: its feature extractor and encoder in float32, eval mode.

    Args:
        path_or_hub_id: a folder written by `audiozoo convert` / training, or a Hub id; "" (HEAR's "no file given")
            loads the offline default model bundled with the package (a small BYOL-A drum-hit classifier). For a
            classifier folder the encoder is the classifier's; its head is not used.
        device: where to put the model (default: stay on the CPU; the HEAR tools call `.to(device)` themselves);
            a device this machine lacks is a `DeviceUnavailableError` before anything loads.
        window_batch_size: windows per encoder pass (memory bound for long audio).
    """
    check_device(device)
    register_models()  # idempotent; registration may have been deferred (the command line)
    source = str(path_or_hub_id) if str(path_or_hub_id) else str(default_model_path())
    config = AutoConfig.from_pretrained(source)
    family_of(getattr(config, "model_type", ""))  # a clear error for models of other packages
    feature_extractor = AutoFeatureExtractor.from_pretrained(source)
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # a classifier folder's head weights are left out on purpose
    try:
        encoder = AutoModel.from_pretrained(source, dtype=torch.float32)
    finally:
        transformers_logging.set_verbosity(verbosity)
    model = HearModel(feature_extractor, encoder, window_batch_size)
    if device is not None:
        model.to(device)
    return model.eval()


__all__ = [
    "HearModel",
    "Windowing",
    "family_windowing",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
    "load_model",
]
