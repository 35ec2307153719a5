"""BYOL-A encoders (Niizumi et al., IJCNN 2021 / TASLP 2023) as transformers models.

Input: [B, 1, n_mels, T] normalised log-mel (the original layout) from [`ByolAFeatureExtractor`], with an
optional frame `attention_mask`. Conv blocks (3x3 conv, BatchNorm, ReLU, 2x2 max-pool) halve time and mel each;
the result is flattened per frame MEL-MAJOR (index mel * 64 + channel) and fed to an MLP. v2 concatenates the
conv features with the MLP output. The clip embedding is max over time + mean over time (a sum, not a concat).
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ModelOutput

from ...layers.classifiers import ClipClassifierMixin, FrameClassifierMixin
from ...layers.heads import AudioClassifierOutput, AudioFrameClassifierOutput
from ...layers.remote_code_saving import RemoteCodeSavingMixin
from .configuration_byol_a import ByolAConfig


@dataclass
class ByolAModelOutput(ModelOutput):
    """Encoder output.

    Args:
        last_hidden_state: [B, T', d] frame features (T' = T // 8 for v1, T // 4 for v2).
        pooler_output: [B, d] max + mean over the valid frames (the original embedding).
        attention_mask: [B, T'] bool, valid frames (None without a mask).
        hidden_states: v1: the five layer features of the original "X" variant, each [B, T', width]: conv1..3
            (channel-major, zero-padded to d if narrower, averaged pairwise in time down to T'), fc1, fc2. v2: the
            conv features [B, T', 1024], the MLP hidden layer and the output.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    attention_mask: torch.BoolTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


def max_plus_mean(frames: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """max_t + mean_t over valid frames (the original pools the whole clip)."""
    if valid is None:
        return frames.max(dim=1).values + frames.mean(dim=1)
    mask = valid.unsqueeze(-1)
    maximum = frames.masked_fill(~mask, float("-inf")).max(dim=1).values
    mean = (frames * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    return maximum + mean


def halve_time_like_the_original(features: torch.Tensor, target_frames: int) -> torch.Tensor:
    """AudioNTT2020X's reduction of [B, T, D] to `target_frames`: while too long, an odd length first averages its
    last two frames into one, then adjacent pairs are averaged."""
    while features.shape[1] > target_frames:
        if features.shape[1] % 2 == 1:
            features = torch.cat([features[:, :-2], features[:, -2:].mean(1, keepdim=True)], dim=1)
        features = features.reshape(features.shape[0], features.shape[1] // 2, 2, features.shape[-1]).mean(2)
    return features


def max_pool_2x2(features: torch.Tensor) -> torch.Tensor:
    """`nn.MaxPool2d(2, stride=2)` of [..., H, W] (floor mode: an odd last row or column is dropped) as two
    element-wise maxima of strided views: the same values (a maximum is exact, and NaN propagates as in max_pool2d).
    On the CPU, max_pool2d's kernel for NCHW tensors (which also computes the indices) takes ~20x as long: at one
    thread 31 ms against 1.4 ms for BYOL-A's first block of a 10 s clip, [1, 64, 64, 1001]."""
    rows, columns = features.shape[-2] // 2 * 2, features.shape[-1] // 2 * 2
    pairs = torch.maximum(features[..., 0:rows:2, :columns], features[..., 1:rows:2, :columns])
    return torch.maximum(pairs[..., 0::2], pairs[..., 1::2])


class ByolAConvBlock(nn.Module):
    def __init__(self, in_channels: int, config: ByolAConfig):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, config.conv_channels, 3, stride=1, padding=1)
        self.norm = nn.BatchNorm2d(config.conv_channels, eps=config.batch_norm_eps)
        self.pool = nn.MaxPool2d(2, stride=2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = self.norm(self.conv(features))
        if features.device.type != "cpu" or (torch.is_grad_enabled() and features.requires_grad):
            # the original's order (and max_pool2d's gradient, all of it to the first maximum of a window)
            return self.pool(torch.relu(features))
        # inference on the CPU: the same values, ReLU after the pool (max and ReLU commute exactly), in place
        return torch.relu_(max_pool_2x2(features))


class ByolAPreTrainedModel(RemoteCodeSavingMixin, PreTrainedModel):
    config: ByolAConfig
    base_model_prefix = "byol_a"
    main_input_name = "input_values"
    input_modalities = ("audio",)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)


class ByolAModel(ByolAPreTrainedModel):
    def __init__(self, config: ByolAConfig):
        super().__init__(config)
        self.conv_blocks = nn.ModuleList(
            [ByolAConvBlock(1 if index == 0 else config.conv_channels, config) for index in range(config.num_conv_blocks)]
        )
        mlp_out = config.hidden_size - config.conv_feature_size if config.version == 2 else config.hidden_size
        self.fc1 = nn.Linear(config.conv_feature_size, config.mlp_hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.fc2 = nn.Linear(config.mlp_hidden_size, mlp_out)
        self.post_init()

    def frame_features(self, encoded: ByolAModelOutput) -> tuple[torch.Tensor, torch.Tensor | None]:
        return encoded.last_hidden_state, encoded.attention_mask

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ByolAModelOutput | tuple:
        """
        Args:
            input_values: [B, 1, n_mels, T] (or [B, n_mels, T]) normalised log-mel.
            attention_mask: [B, T] frame mask. Padded frames are zeroed before every conv block, so a clip's
                frames and embedding are the same alone or padded in a batch.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if input_values.dim() == 3:
            input_values = input_values.unsqueeze(1)
        config = self.config
        if input_values.dim() != 4 or input_values.shape[1:3] != (1, config.n_mels):
            raise ValueError(
                f"input_values must be a log-mel [batch, 1, {config.n_mels}, frames] (use ByolAFeatureExtractor), "
                f"got shape {tuple(input_values.shape)}"
            )
        if input_values.shape[-1] < config.time_reduction:
            raise ValueError(f"input_values has {input_values.shape[-1]} frames; at least {config.time_reduction} are needed")
        lengths = attention_mask.long().sum(dim=1) if attention_mask is not None else None

        features, layers = input_values, []
        target_frames = input_values.shape[-1] // config.time_reduction
        for block in self.conv_blocks:
            if lengths is not None:
                time_valid = torch.arange(features.shape[-1], device=features.device)[None, :] < lengths[:, None]
                features = features * time_valid[:, None, None, :].to(features.dtype)
                lengths = lengths // 2
            features = block(features)
            if output_hidden_states and config.version == 1:
                batch, channels, mels, frames = features.shape
                flat = features.permute(0, 3, 1, 2).reshape(batch, frames, channels * mels)  # channel-major
                if flat.shape[-1] < config.hidden_size:
                    flat = nn.functional.pad(flat, (0, config.hidden_size - flat.shape[-1]))
                layers.append(halve_time_like_the_original(flat, target_frames))
        batch, channels, mels, frames = features.shape
        conv_features = features.permute(0, 3, 2, 1).reshape(batch, frames, mels * channels)  # mel-major
        hidden = torch.relu(self.fc1(conv_features))
        output = torch.relu(self.fc2(self.dropout(hidden)))
        if config.version == 2:
            output = torch.cat([conv_features, output], dim=-1)
            layers = [conv_features, hidden, output]
        else:
            layers += [hidden, output]
        valid = (torch.arange(frames, device=output.device)[None, :] < lengths[:, None]) if lengths is not None else None
        result = ByolAModelOutput(
            last_hidden_state=output,
            pooler_output=max_plus_mean(output, valid),
            attention_mask=valid,
            hidden_states=tuple(layers) if output_hidden_states else None,
        )
        return result if return_dict else result.to_tuple()


class _ByolALinearClassifier:
    """One Linear layer on the embedding (`pooler_output`) and on every frame of `last_hidden_state`."""

    encoder_class = ByolAModel

    def _init_classifier(self, config: ByolAConfig) -> None:
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)


class ByolAForAudioClassification(_ByolALinearClassifier, ClipClassifierMixin, ByolAPreTrainedModel):
    """A linear classifier on the frozen-style embedding (the original linear evaluation's head)."""

    def forward(self, input_values, attention_mask=None, labels=None, output_hidden_states=None, return_dict=None,
                **kwargs) -> AudioClassifierOutput | tuple:
        return self._classify_clip(input_values, labels, return_dict, kwargs, attention_mask=attention_mask,
                                   output_hidden_states=output_hidden_states)


class ByolAForAudioFrameClassification(_ByolALinearClassifier, FrameClassifierMixin, ByolAPreTrainedModel):
    """A linear classifier on every frame (`config.frame_rate` per second) with clip logits from the embedding,
    or, with `config.sed_head` set, the PretrainedSED prediction head on the frame features."""

    def forward(self, input_values, attention_mask=None, labels=None, clip_labels=None, frame_mask=None,
                output_hidden_states=None, return_dict=None, **kwargs) -> AudioFrameClassifierOutput | tuple:
        return self._classify_frames(input_values, labels, clip_labels, frame_mask, return_dict,
                                     attention_mask=attention_mask, output_hidden_states=output_hidden_states)


__all__ = ["ByolAForAudioClassification", "ByolAForAudioFrameClassification", "ByolAModel", "ByolAPreTrainedModel"]
