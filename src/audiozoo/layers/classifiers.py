"""The clip and frame classifiers of every family, written once: encoder, head, loss and output.

A classifier holds the family's encoder (`encoder_class`, stored under the model's `base_model_prefix`) and the
family's head, which `_init_classifier` builds. By default the head classifies the encoder's `pooler_output` (the
clip) and, per time step, the features of the encoder's `frame_features(encoded)`; a family with another head
(BEATs' per-patch classifier) overrides `_clip_logits` / `_frame_logits`. Frame classifiers use the PretrainedSED
prediction head instead when `config.sed_head` is set; so do the clip classifiers built on `SedHeadClipClassifierMixin`
(their logits are then that head's clip logits, so that a converted frame checkpoint classifies clips with its own
weights).

`forward` takes the arguments of encoders without a frame mask (AST, EAT, the PretrainedSED encoders); families
whose encoders take an `attention_mask` (BEATs, BYOL-A) keep their own `forward`, which passes it on to
`_classify_clip` / `_classify_frames`.
"""

from __future__ import annotations

import torch
from torch import nn

from .heads import AudioClassifierOutput, AudioFrameClassifierOutput, frame_classification_loss
from .sed_head import SedHeadMixin, SedHeadSettings


class NormLinearHead(nn.Module):
    """LayerNorm + Linear, on pooled or per-frame features of width `input_size` (default `config.hidden_size`);
    eps `config.classifier_layer_norm_eps` unless given."""

    def __init__(self, config, input_size: int | None = None, eps: float | None = None):
        super().__init__()
        input_size = input_size or config.hidden_size
        self.layer_norm = nn.LayerNorm(input_size, eps=config.classifier_layer_norm_eps if eps is None else eps)
        self.dense = nn.Linear(input_size, config.num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dense(self.layer_norm(features))


class _EncoderClassifier:
    """Builds the encoder, then the head (`_init_head`), then initialises the weights."""

    encoder_class: type[nn.Module]

    def __init__(self, config):
        super().__init__(config)
        setattr(self, self.base_model_prefix, self.encoder_class(config))
        self._init_head(config)
        self.post_init()

    def _init_classifier(self, config) -> None:
        """The family's own head (`self.classifier` and whatever it needs)."""
        raise NotImplementedError

    def _init_head(self, config) -> None:
        self._init_classifier(config)

    def _encode(self, input_values: torch.Tensor, **encoder_kwargs):
        return self.base_model(input_values, return_dict=True, **encoder_kwargs)


class ClipClassifierMixin(_EncoderClassifier):
    """The fine-tuned clip model: raw logits (apply a sigmoid for AudioSet)."""

    def _clip_logits(self, encoded) -> dict:
        """The head's fields of the output: `logits` [B, C], and any others the head has."""
        return {"logits": self.classifier(encoded.pooler_output)}

    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AudioClassifierOutput | tuple:
        """`labels`: [B] class ids (single-label) or [B, C] floats (multi-label), per `config.problem_type`."""
        return self._classify_clip(
            input_values, labels, return_dict, kwargs, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )

    def _classify_clip(self, input_values, labels, return_dict, loss_kwargs: dict, **encoder_kwargs):
        """Encode, classify, and the loss when `labels` are given (`loss_kwargs` go to `self.loss_function`)."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoded = self._encode(input_values, **encoder_kwargs)
        head_fields = self._clip_logits(encoded)
        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=head_fields["logits"], config=self.config, **loss_kwargs)
        output = AudioClassifierOutput(
            loss=loss, hidden_states=encoded.hidden_states, attentions=getattr(encoded, "attentions", None),
            **head_fields,
        )
        return output if return_dict else output.to_tuple()


class _OptionalSedHead(SedHeadMixin):
    """The PretrainedSED prediction head when `config.sed_head` is set, else the family's own head."""

    @property
    def uses_sed_head(self) -> bool:
        return self.config.sed_head is not None

    @property
    def sed_input_size(self) -> int:
        """Width of the sequence the PretrainedSED head reads."""
        return self.config.hidden_size

    def _init_head(self, config) -> None:
        if self.uses_sed_head:
            self._init_sed_head(self.sed_input_size)
        else:
            self._init_classifier(config)


class SedHeadClipClassifierMixin(_OptionalSedHead, ClipClassifierMixin):
    """A clip classifier that, with `config.sed_head` set, holds the frame classifier's PretrainedSED head (same
    module names, so a frame checkpoint loads into it without missing or unexpected weights) and returns its clip
    (weak) logits: exactly the frame classifier's `clip_logits`. Without it, the family's own clip head."""

    @property
    def window_seconds(self) -> float | None:
        """With a PretrainedSED head, the audio of one of its windows (`pipeline("audio-classification")` classifies
        longer clips window by window, as the head was trained); None: a clip of any length in one pass."""
        return SedHeadSettings.from_dict(self.config.sed_head).window_seconds if self.uses_sed_head else None

    def _clip_logits(self, encoded) -> dict:
        if self.uses_sed_head:
            return {"logits": self.sed_head(self._sed_sequence(self.base_model, encoded)).clip_logits}
        return self._own_clip_logits(encoded)

    def _own_clip_logits(self, encoded) -> dict:
        return super()._clip_logits(encoded)


class FrameClassifierMixin(_OptionalSedHead, _EncoderClassifier):
    """Per-time-step logits from the family's head (`clip_logits` from the same head, so a fine-tuned checkpoint
    gives both from one pass), or from the PretrainedSED head when `config.sed_head` is set."""

    def _frame_logits(self, encoded) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(frame logits [B, T', C], clip logits [B, C], frame mask [B, T'] or None) from the family's head."""
        frames, frame_mask = self.base_model.frame_features(encoded)
        return self.classifier(frames), self.classifier(encoded.pooler_output), frame_mask

    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        clip_labels: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AudioFrameClassifierOutput | tuple:
        """`labels`: float frame targets [B, T', C] (T' = the encoder's time steps, or the SED head's seq_len);
        `clip_labels`: optional [B, C]; `frame_mask`: [B, T'] (SED head)."""
        return self._classify_frames(
            input_values, labels, clip_labels, frame_mask, return_dict, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )

    def _classify_frames(self, input_values, labels, clip_labels, frame_mask, return_dict, **encoder_kwargs):
        """Encode and classify; the loss is masked frame BCE, plus clip BCE when `clip_labels` are given. The
        family's own head takes its frame mask from the encoder (`frame_mask` is for the SED head)."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoded = self._encode(input_values, **encoder_kwargs)
        if self.uses_sed_head:
            return self._sed_forward(self.base_model, encoded, labels, clip_labels, frame_mask, return_dict)
        frame_logits, clip_logits, frame_mask = self._frame_logits(encoded)
        loss = None
        if labels is not None:
            loss = frame_classification_loss(frame_logits, labels, frame_mask, clip_logits, clip_labels)
        output = AudioFrameClassifierOutput(
            loss=loss, logits=frame_logits, clip_logits=clip_logits, frame_mask=frame_mask,
            hidden_states=encoded.hidden_states, attentions=getattr(encoded, "attentions", None),
        )
        return output if return_dict else output.to_tuple()


class _NormLinearClassifier:
    def _init_classifier(self, config) -> None:
        self.classifier = NormLinearHead(config)


class PooledTokenClassifierMixin(_NormLinearClassifier, ClipClassifierMixin):
    """AST / EAT clip model: logits = NormLinearHead(pooler_output)."""


class TokenFrameClassifierMixin(_NormLinearClassifier, FrameClassifierMixin):
    """AST / EAT frame model: the clip head applied to each time step's features, or the PretrainedSED head (usually
    with `input_sequence="frames"`)."""


__all__ = [
    "ClipClassifierMixin",
    "FrameClassifierMixin",
    "NormLinearHead",
    "PooledTokenClassifierMixin",
    "SedHeadClipClassifierMixin",
    "TokenFrameClassifierMixin",
]
