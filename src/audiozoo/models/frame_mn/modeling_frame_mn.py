"""frame-MobileNet as a transformers model: [`FrameMobileNetEncoder`] + the PretrainedSED prediction head.

Input [B, 1, 128, T] from [`PasstMelFeatureExtractor`] with `periodic_window=False`; output one feature vector
per 4 input frames (40 ms), [B, ceil(ceil(T / 2) / 2), 6 * c]. Any input length works.
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from ...layers.sed_model import (
    SedForAudioClassificationBase,
    SedForAudioFrameClassificationBase,
    SedPreTrainedModel,
    check_spectrogram_input,
)
from .configuration_frame_mn import FrameMnConfig
from .mobilenet import FrameMobileNetEncoder


class FrameMnPreTrainedModel(SedPreTrainedModel):
    config: FrameMnConfig
    config_class = FrameMnConfig
    base_model_prefix = "frame_mn"
    # no attention layers: any attention implementation a caller asks for is accepted and has no effect
    _supports_sdpa = True
    _supports_flash_attn = True
    _no_split_modules = []


class FrameMnModel(FrameMnPreTrainedModel):
    def __init__(self, config: FrameMnConfig):
        super().__init__(config)
        self.network = FrameMobileNetEncoder(config.width_mult, config.batch_norm_eps, config.batch_norm_momentum)
        self.post_init()

    @property
    def output_size(self) -> int:
        return self.network.hidden_size

    def forward(self, input_values: torch.Tensor, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None, return_dict: bool | None = None, **kwargs):
        """`last_hidden_state`: [B, T', 6 * c]; `hidden_states`: the output of every one of the 17 feature stages."""
        output_hidden_states = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        check_spectrogram_input(input_values, self.config.num_mel_bins, "frame-MobileNet")
        stages: list[torch.Tensor] | None = [] if output_hidden_states else None
        sequence = self.network(input_values, stage_outputs=stages)  # one pass, stages collected on the way
        output = BaseModelOutput(last_hidden_state=sequence, hidden_states=None if stages is None else tuple(stages))
        return output if return_dict else output.to_tuple()


class FrameMnForAudioFrameClassification(SedForAudioFrameClassificationBase, FrameMnPreTrainedModel):
    """frame-MobileNet + the PretrainedSED head: 250 frames (40 ms) of strong logits and clip logits per 10 s."""

    encoder_class = FrameMnModel


class FrameMnForAudioClassification(SedForAudioClassificationBase, FrameMnPreTrainedModel):
    """frame-MobileNet + a clip head: the PretrainedSED head's clip logits when `config.sed_head` is set, else
    LayerNorm + Linear on the mean over time of the 40 ms frame features (EfficientAT's MobileNet classifier pools
    its feature map by averaging too). Takes any length, but was trained on 10 s: the audio-classification pipeline
    classifies longer clips window by window."""

    encoder_class = FrameMnModel


__all__ = [
    "FrameMnForAudioClassification",
    "FrameMnForAudioFrameClassification",
    "FrameMnModel",
    "FrameMnPreTrainedModel",
]
