"""Audio Spectrogram Transformer (Gong et al., Interspeech 2021) as transformers models.

Input: [B, T, 128] normalised filterbank from [`AstFeatureExtractor`], T = `config.max_length`. The filterbank is
laid out as an image with frequency as height and time as width; 16x16 patches with separate strides give a
FREQUENCY-MAJOR token sequence (patch p = frequency row p // t, time column p % t) after the cls and distillation
tokens. The encoder is a DeiT (timm 0.4.5) pre-LN ViT.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ModelOutput

from ...sed_head import SedHeadMixin
from ...heads import AudioClassifierOutput, AudioFrameClassifierOutput, frame_classification_loss
from ...vit import PatchEmbedding, PreNormBlock, init_vit_weights, output_flags, run_blocks
from .configuration_ast import AstConfig


@dataclass
class AstModelOutput(ModelOutput):
    """Encoder output.

    Args:
        last_hidden_state: [B, 2 + F*T, D] after the final LayerNorm: cls, distillation, then patch tokens.
        pooler_output: [B, D] mean of the cls and distillation tokens (the original's pooling).
        hidden_states: L + 1 tensors: the embeddings (tokens + positions), then every block's output, before the
            final LayerNorm (as timm and transformers' ViTs).
        attentions: L tensors [B, H, N, N] (eager attention only).
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class AstEmbeddings(nn.Module):
    """Patch tokens of the (frequency x time) image, cls and distillation tokens, learned positions."""

    init_tables = ("cls_token", "distillation_token", "position_embeddings")

    def __init__(self, config: AstConfig):
        super().__init__()
        self.patch_embedding = PatchEmbedding(
            config.hidden_size, config.patch_size, (config.frequency_stride, config.time_stride)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        num_tokens = 2 + config.frequency_patches * config.time_patches
        self.position_embeddings = nn.Parameter(torch.zeros(1, num_tokens, config.hidden_size))

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(input_values.unsqueeze(1).transpose(2, 3))  # [B, 1, mel, time]
        batch = patches.shape[0]
        tokens = torch.cat(
            [self.cls_token.expand(batch, -1, -1), self.distillation_token.expand(batch, -1, -1), patches], dim=1
        )
        return tokens + self.position_embeddings


class AstPreTrainedModel(PreTrainedModel):
    config: AstConfig
    base_model_prefix = "ast"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = False
    _no_split_modules = ["PreNormBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """timm's ViT initialisation: truncated normal(0.02) for linears and token/position tables."""
        init_vit_weights(module, self.config.initializer_range)


class AstModel(AstPreTrainedModel):
    def __init__(self, config: AstConfig):
        super().__init__(config)
        self.embeddings = AstEmbeddings(config)
        # separate q/k/v projections: their [B, H, L, d] views run faster in SDPA than slices of a fused one
        self.layers = nn.ModuleList([PreNormBlock(config, fused_qkv=False) for _ in range(config.num_hidden_layers)])
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def frame_features(self, encoded: AstModelOutput) -> tuple[torch.Tensor, None]:
        """Per-time-step features [B, T', D]: the frequency-major patch grid averaged over frequency (no mask)."""
        patches = encoded.last_hidden_state[:, 2:]
        grid = patches.reshape(patches.shape[0], self.config.frequency_patches, self.config.time_patches, -1)
        return grid.mean(dim=1), None

    def forward(
        self,
        input_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AstModelOutput | tuple:
        """`input_values`: [B, max_length, num_mel_bins] from AstFeatureExtractor (every frame is attended to)."""
        output_hidden_states, output_attentions, return_dict = output_flags(
            self.config, output_hidden_states, output_attentions, return_dict
        )
        expected = (self.config.max_length, self.config.num_mel_bins)  # fixed input size
        if input_values.dim() != 3 or tuple(input_values.shape[1:]) != expected:
            raise ValueError(
                f"input_values must be [batch, {expected[0]}, {expected[1]}] (this model's max_length and mel bins; "
                f"use AstFeatureExtractor), got {tuple(input_values.shape)}"
            )
        hidden = self.embeddings(input_values)
        hidden, all_hidden, all_attentions = run_blocks(self.layers, hidden, None, output_hidden_states, output_attentions)
        last = self.layer_norm(hidden)
        output = AstModelOutput(
            last_hidden_state=last, pooler_output=(last[:, 0] + last[:, 1]) / 2, hidden_states=all_hidden,
            attentions=all_attentions,
        )
        return output if return_dict else output.to_tuple()


class AstClassificationHead(nn.Module):
    """LayerNorm (eps 1e-5 in the original) + Linear, on pooled or per-frame features."""

    def __init__(self, config: AstConfig):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.classifier_layer_norm_eps)
        self.dense = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dense(self.layer_norm(features))


class _AstWithHead(AstPreTrainedModel):
    def __init__(self, config: AstConfig):
        super().__init__(config)
        self.ast = AstModel(config)
        self.classifier = AstClassificationHead(config)
        self.post_init()

    def _encode(self, input_values, output_hidden_states, output_attentions) -> AstModelOutput:
        return self.ast(
            input_values,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )


class AstForAudioClassification(_AstWithHead):
    """AST with the original head on the pooled (cls + distillation) / 2 token; raw logits out."""

    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AudioClassifierOutput | tuple:
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


class AstForAudioFrameClassification(SedHeadMixin, _AstWithHead):
    """Per-time-step logits, from one of two heads.

    - `config.sed_head` None: patch tokens averaged over their frequency rows, then the classification head.
      Step t covers filterbank frames [t * time_stride, t * time_stride + 16): `config.frame_rate` steps per
      second (10 for the 10/10 models). `clip_logits` are the clip head's logits, so a fine-tuned checkpoint
      gives both from one forward pass.
    - `config.sed_head` set: the PretrainedSED prediction head (`audiozoo.sed_head`), usually on the per-step
      features (`input_sequence="frames"`).
    """

    def __init__(self, config: AstConfig):
        AstPreTrainedModel.__init__(self, config)
        self.ast = AstModel(config)
        if config.sed_head is None:
            self.classifier = AstClassificationHead(config)
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
        """`labels`: float frame targets [B, T', C] (T' = config.time_patches, or the SED head's seq_len);
        `clip_labels`: optional [B, C]; `frame_mask`: [B, T'] (SED head)."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoded = self._encode(input_values, output_hidden_states, output_attentions)
        if self.config.sed_head is not None:
            output = self._sed_output(self._sed_sequence(self.ast, encoded), labels, clip_labels, frame_mask,
                                      encoded.hidden_states, encoded.attentions)
            return output if return_dict else output.to_tuple()
        frames, _ = self.ast.frame_features(encoded)
        frame_logits = self.classifier(frames)
        clip_logits = self.classifier(encoded.pooler_output)
        loss = None
        if labels is not None:
            loss = frame_classification_loss(frame_logits, labels, None, clip_logits, clip_labels)
        output = AudioFrameClassifierOutput(
            loss=loss,
            logits=frame_logits,
            clip_logits=clip_logits,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["AstForAudioClassification", "AstForAudioFrameClassification", "AstModel", "AstPreTrainedModel"]
