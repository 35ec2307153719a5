"""Clip and frame classifiers on a pooled-token ViT encoder (AST, EAT): one LayerNorm + Linear head, written once.

The encoder (built from `encoder_class`, stored under the model's `base_model_prefix`) returns `pooler_output`
(the pooled token the original classifies) and provides `frame_features(encoded)` (per-time-step features).
The clip model classifies the pooled token; the frame model applies the same head to every time step, or,
with `config.sed_head` set, the PretrainedSED prediction head.
"""

from __future__ import annotations

import torch
from torch import nn

from .heads import AudioClassifierOutput, AudioFrameClassifierOutput, frame_classification_loss
from .sed_head import SedHeadMixin


class NormLinearHead(nn.Module):
    """LayerNorm (eps `config.classifier_layer_norm_eps`) + Linear, on pooled or per-frame features."""

    def __init__(self, config):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.classifier_layer_norm_eps)
        self.dense = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dense(self.layer_norm(features))


class _TokenEncoderUser:
    """Builds the encoder under `base_model_prefix` and runs it with full outputs."""

    encoder_class: type[nn.Module]

    def _build_encoder(self, config) -> None:
        setattr(self, self.base_model_prefix, self.encoder_class(config))

    def _encode(self, input_values, output_hidden_states, output_attentions):
        return self.base_model(input_values, output_hidden_states=output_hidden_states,
                               output_attentions=output_attentions, return_dict=True)


class PooledTokenClassifierMixin(_TokenEncoderUser):
    """The fine-tuned clip model: logits = head(pooler_output); raw logits (apply a sigmoid for AudioSet)."""

    def __init__(self, config):
        super().__init__(config)
        self._build_encoder(config)
        self.classifier = NormLinearHead(config)
        self.post_init()

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
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoded = self._encode(input_values, output_hidden_states, output_attentions)
        logits = self.classifier(encoded.pooler_output)
        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config, **kwargs)
        output = AudioClassifierOutput(
            loss=loss, logits=logits, hidden_states=encoded.hidden_states, attentions=encoded.attentions
        )
        return output if return_dict else output.to_tuple()


class TokenFrameClassifierMixin(SedHeadMixin, _TokenEncoderUser):
    """Per-time-step logits: the clip head applied to each step's features (`clip_logits` are the clip head's on
    the pooled token, so a fine-tuned checkpoint gives both from one pass), or the PretrainedSED head when
    `config.sed_head` is set (usually with `input_sequence="frames"`)."""

    def __init__(self, config):
        super().__init__(config)
        self._build_encoder(config)
        if config.sed_head is None:
            self.classifier = NormLinearHead(config)
        else:
            self._init_sed_head(config.hidden_size)
        self.post_init()

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
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoded = self._encode(input_values, output_hidden_states, output_attentions)
        if self.config.sed_head is not None:
            return self._sed_forward(self.base_model, encoded, labels, clip_labels, frame_mask, return_dict)
        frames, _ = self.base_model.frame_features(encoded)
        frame_logits = self.classifier(frames)
        clip_logits = self.classifier(encoded.pooler_output)
        loss = None
        if labels is not None:
            loss = frame_classification_loss(frame_logits, labels, None, clip_logits, clip_labels)
        output = AudioFrameClassifierOutput(
            loss=loss, logits=frame_logits, clip_logits=clip_logits, hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["NormLinearHead", "PooledTokenClassifierMixin", "TokenFrameClassifierMixin"]
