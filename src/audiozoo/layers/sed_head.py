"""The frame-level prediction head of PretrainedSED (Schmid et al., ICASSP 2025), usable on every encoder here.

An encoder sequence [B, N, D] is resampled to `seq_len` frames (adaptive average pooling when longer, linear
interpolation when shorter, as the original `PredictionsWrapper`), optionally passed through a bidirectional
GRU/LSTM, then classified per frame ("strong") and per clip ("weak"):

- "linear": strong = Linear(frames) logits, weak = Linear(mean over frames) logits;
- "attention" (DESED baseline): strong = sigmoid(Linear(frames)), attention weights = softmax over the CLASS axis
  of a second Linear (clamped to [1e-7, 1]), weak = attention-weighted mean of strong over time. Outputs are
  probabilities; `logits` then hold their logit.

The head's settings live in the model config as a dict, `config.sed_head` (None: the family's own frame head).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from .heads import AudioFrameClassifierOutput, masked_frame_mean

SEQ_MODEL_TYPES = (None, "rnn")
RNN_TYPES = ("BiGRU", "BiLSTM")
HEAD_TYPES = ("linear", "attention")
INPUT_SEQUENCES = ("tokens", "frames")


@dataclass
class SedHeadSettings:
    """Settings of the prediction head (the original's PredictionsWrapper arguments, same defaults).

    Args:
        seq_len: frames per model window after resampling the encoder sequence (250 = 40 ms over 10 s).
        window_seconds: audio per model window; `seq_len / window_seconds` is the frame rate.
        seq_model_type: None or "rnn" (a bidirectional recurrent layer stack between resampling and heads).
        rnn_type, rnn_layers, rnn_dim, rnn_dropout: the recurrent model ("BiGRU" or "BiLSTM"; hidden size per
            direction rnn_dim, so the heads see 2 * rnn_dim features).
        head_type: "linear" (logits) or "attention" (probabilities, DESED-style clip pooling).
        num_weak_labels: clip classes when they differ from the frame classes (linear head only).
        input_sequence: which encoder sequence is resampled: "tokens" (the encoder's output tokens in their own
            order, as PretrainedSED feeds BEATs/ASiT/ATST/fPaSST/M2D) or "frames" (the family's per-time-step
            features, e.g. patches averaged over frequency; the natural choice for AST/EAT/BYOL-A).
    """

    seq_len: int = 250
    window_seconds: float = 10.0
    seq_model_type: str | None = None
    rnn_type: str = "BiGRU"
    rnn_layers: int = 2
    rnn_dim: int = 2048
    rnn_dropout: float = 0.0
    head_type: str = "linear"
    num_weak_labels: int | None = None
    input_sequence: str = "tokens"

    def __post_init__(self) -> None:
        checks = (
            ("seq_model_type", self.seq_model_type, SEQ_MODEL_TYPES),
            ("rnn_type", self.rnn_type, RNN_TYPES),
            ("head_type", self.head_type, HEAD_TYPES),
            ("input_sequence", self.input_sequence, INPUT_SEQUENCES),
        )
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"sed_head.{name} must be one of {allowed}, got {value!r}")
        if self.seq_len < 1 or self.window_seconds <= 0:
            raise ValueError(f"sed_head needs seq_len >= 1 and window_seconds > 0, got {self.seq_len}, {self.window_seconds}")

    @classmethod
    def from_dict(cls, values: dict | None) -> SedHeadSettings:
        values = dict(values or {})
        unknown = set(values) - {field.name for field in fields(cls)}
        if unknown:
            raise ValueError(f"unknown sed_head settings {sorted(unknown)}; known: {[f.name for f in fields(cls)]}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def frame_rate(self) -> float:
        """Output frames per second (25 for 250 frames over 10 s, i.e. 40 ms frames)."""
        return self.seq_len / self.window_seconds


class SedHeadConfigMixin:
    """For model configs with a `sed_head` field: `frame_rate`, the frame classifier's output frames per second,
    is the PretrainedSED head's when `sed_head` is set, else that of the family's own frame head
    (`native_frame_rate`)."""

    @property
    def frame_rate(self) -> float:
        if self.sed_head is not None:
            return self.sed_head.get("seq_len", 250) / self.sed_head.get("window_seconds", 10.0)
        return self.native_frame_rate


def resample_sequence(sequence: torch.Tensor, length: int) -> torch.Tensor:
    """[B, N, D] -> [B, length, D]: adaptive average pooling if N > length, linear interpolation if N < length."""
    steps = sequence.shape[1]
    if steps == length:
        return sequence
    channels_first = sequence.transpose(1, 2)
    if steps > length:
        resampled = nn.functional.adaptive_avg_pool1d(channels_first, length)
    else:
        resampled = nn.functional.interpolate(channels_first, size=length, mode="linear", align_corners=False)
    return resampled.transpose(1, 2)


class BidirectionalRecurrent(nn.Module):
    """The original's BiGRU (output sequence only) or BiLSTM (plus a Linear on the output), batch first."""

    def __init__(self, input_size: int, settings: SedHeadSettings):
        super().__init__()
        recurrent = nn.GRU if settings.rnn_type == "BiGRU" else nn.LSTM
        self.rnn = recurrent(
            input_size, settings.rnn_dim, num_layers=settings.rnn_layers, bidirectional=True, batch_first=True,
            dropout=settings.rnn_dropout,
        )
        self.embedding = nn.Linear(2 * settings.rnn_dim, 2 * settings.rnn_dim) if settings.rnn_type == "BiLSTM" else None

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(sequence)
        return output if self.embedding is None else self.embedding(output)


@dataclass
class SedHeadOutput:
    frames: torch.Tensor  # [B, seq_len, D'] input of the heads (after the sequence model)
    frame_logits: torch.Tensor  # [B, seq_len, C]
    clip_logits: torch.Tensor  # [B, C_weak]
    frame_probabilities: torch.Tensor
    clip_probabilities: torch.Tensor


class SedPredictionHead(nn.Module):
    """Resampling to `seq_len` frames, optional recurrent model, strong (frame) and weak (clip) heads."""

    def __init__(self, hidden_size: int, num_labels: int, settings: SedHeadSettings):
        super().__init__()
        self.settings = settings
        weak_labels = settings.num_weak_labels or num_labels
        if settings.head_type == "attention" and weak_labels != num_labels:
            raise ValueError(f"the attention head needs as many clip as frame classes, got {weak_labels} and {num_labels}")
        self.seq_model = BidirectionalRecurrent(hidden_size, settings) if settings.seq_model_type == "rnn" else None
        features = 2 * settings.rnn_dim if self.seq_model is not None else hidden_size
        self.strong_head = nn.Linear(features, num_labels)
        self.weak_head = nn.Linear(features, weak_labels)

    def forward(self, sequence: torch.Tensor) -> SedHeadOutput:
        frames = resample_sequence(sequence, self.settings.seq_len)
        if self.seq_model is not None:
            frames = self.seq_model(frames)
        if self.settings.head_type == "linear":
            frame_logits, clip_logits = self.strong_head(frames), self.weak_head(frames.mean(dim=1))
            return SedHeadOutput(frames, frame_logits, clip_logits, frame_logits.sigmoid(), clip_logits.sigmoid())
        frame_probabilities = self.strong_head(frames).sigmoid()
        attention = self.weak_head(frames).softmax(dim=-1).clamp(min=1e-7, max=1.0)
        clip_probabilities = (frame_probabilities * attention).sum(dim=1) / attention.sum(dim=1)
        return SedHeadOutput(
            frames, torch.logit(frame_probabilities), torch.logit(clip_probabilities), frame_probabilities,
            clip_probabilities,
        )


def sed_loss(
    head_output: SedHeadOutput,
    head_type: str,
    labels: torch.Tensor,
    frame_mask: torch.Tensor | None = None,
    clip_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """BCE on float frame labels [B, T, C] (valid frames only) plus clip BCE when clip labels are given.

    The linear head's loss is computed from logits; the attention head's from its probabilities (clamped away
    from 0 and 1), since it never produces logits.
    """
    frame_scores = head_output.frame_logits if head_type == "linear" else head_output.frame_probabilities
    if labels.shape != frame_scores.shape:
        raise ValueError(
            f"frame labels must have shape [batch, frames, classes] = {tuple(frame_scores.shape)}, got {tuple(labels.shape)}"
        )
    if frame_mask is not None and frame_mask.shape != labels.shape[:2]:
        raise ValueError(f"frame_mask must have shape [batch, frames] = {tuple(labels.shape[:2])}, got {tuple(frame_mask.shape)}")

    def bce(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(scores.dtype)
        if head_type == "linear":
            return nn.functional.binary_cross_entropy_with_logits(scores, targets, reduction="none")
        return nn.functional.binary_cross_entropy(scores.clamp(1e-7, 1 - 1e-7), targets, reduction="none")

    loss = masked_frame_mean(bce(frame_scores, labels), frame_mask)
    if clip_labels is not None:
        clip_scores = head_output.clip_logits if head_type == "linear" else head_output.clip_probabilities
        if clip_labels.shape != clip_scores.shape:
            raise ValueError(f"clip labels must have shape {tuple(clip_scores.shape)}, got {tuple(clip_labels.shape)}")
        loss = loss + bce(clip_scores, clip_labels).mean()
    return loss


class SedHeadMixin:
    """For `...ForAudioFrameClassification` classes: build and run the prediction head from `config.sed_head`."""

    def _init_sed_head(self, hidden_size: int) -> None:
        self.sed_settings = SedHeadSettings.from_dict(self.config.sed_head)
        self.sed_head = SedPredictionHead(hidden_size, self.config.num_labels, self.sed_settings)

    def _sed_sequence(self, encoder, encoded) -> torch.Tensor:
        """The encoder sequence the head resamples: output tokens as they are, or the family's frame features."""
        if self.sed_settings.input_sequence == "frames":
            return encoder.frame_features(encoded)[0]
        return encoded.last_hidden_state

    def _sed_forward(self, encoder, encoded, labels, clip_labels, frame_mask, return_dict: bool):
        """The frame classifiers' SED branch: head on the encoder's sequence, output as a dataclass or tuple."""
        output = self._sed_output(self._sed_sequence(encoder, encoded), labels, clip_labels, frame_mask,
                                  getattr(encoded, "hidden_states", None), getattr(encoded, "attentions", None))
        return output if return_dict else output.to_tuple()

    def _sed_output(
        self,
        sequence: torch.Tensor,
        labels: torch.Tensor | None,
        clip_labels: torch.Tensor | None,
        frame_mask: torch.Tensor | None,
        hidden_states=None,
        attentions=None,
    ) -> AudioFrameClassifierOutput:
        head_output = self.sed_head(sequence)
        loss = None
        if labels is not None:
            loss = sed_loss(head_output, self.sed_settings.head_type, labels, frame_mask, clip_labels)
        return AudioFrameClassifierOutput(
            loss=loss,
            logits=head_output.frame_logits,
            clip_logits=head_output.clip_logits,
            probabilities=head_output.frame_probabilities,
            clip_probabilities=head_output.clip_probabilities,
            frame_mask=frame_mask,
            hidden_states=hidden_states,
            attentions=attentions,
        )


__all__ = [
    "BidirectionalRecurrent",
    "SedHeadConfigMixin",
    "SedHeadMixin",
    "SedHeadSettings",
    "SedPredictionHead",
    "resample_sequence",
    "sed_loss",
]
