"""Configuration of BEATs (audio encoder, fine-tuned classifier) and its acoustic tokenizer.

Every field of the original ``BEATsConfig`` / ``TokenizersConfig`` has a counterpart here under a descriptive
name; ``ORIGINAL_FIELD_NAMES`` maps the original names to ours (the conversion uses it). Defaults are the values
of the released iter3 checkpoints, not the original class defaults.
"""

from __future__ import annotations

from transformers import PreTrainedConfig

from ...layers.sed_head import SedHeadConfigMixin

# original cfg key -> field of BeatsConfig / BeatsTokenizerConfig
ORIGINAL_FIELD_NAMES: dict[str, str] = {
    "input_patch_size": "patch_size",
    "embed_dim": "patch_embed_dim",
    "conv_bias": "patch_embed_bias",
    "encoder_layers": "num_hidden_layers",
    "encoder_embed_dim": "hidden_size",
    "encoder_ffn_embed_dim": "intermediate_size",
    "encoder_attention_heads": "num_attention_heads",
    "activation_fn": "hidden_act",
    "layer_wise_gradient_decay_ratio": "layer_wise_gradient_decay_ratio",
    "layer_norm_first": "layer_norm_first",
    "deep_norm": "deep_norm",
    "dropout": "hidden_dropout",
    "attention_dropout": "attention_dropout",
    "activation_dropout": "activation_dropout",
    "encoder_layerdrop": "layerdrop",
    "dropout_input": "input_dropout",
    "conv_pos": "num_conv_pos_embeddings",
    "conv_pos_groups": "num_conv_pos_embedding_groups",
    "relative_position_embedding": "relative_position_embedding",
    "num_buckets": "num_buckets",
    "max_distance": "max_distance",
    "gru_rel_pos": "gated_relative_position_bias",
    "predictor_dropout": "classifier_dropout",
    # "predictor_class" becomes the length of id2label, "finetuned_model" the choice of model class.
    "quant_n": "codebook_size",
    "quant_dim": "codebook_dim",
}

SUPPORTED_ACTIVATIONS = ("gelu", "relu", "tanh", "linear")


class BeatsConfig(SedHeadConfigMixin, PreTrainedConfig):
    r"""Configuration of [`BeatsModel`], [`BeatsForAudioClassification`] and [`BeatsForAudioFrameClassification`].

    Args:
        patch_size: square patch size on the (time, mel) filterbank, also the patch-embedding stride.
        patch_embed_dim: width of the patch embedding before the projection to `hidden_size`.
        patch_embed_bias: whether the patch-embedding convolution has a bias.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, hidden_act: the Transformer.
        layer_norm_first: pre-LN layers (plus a final LayerNorm) instead of post-LN.
        deep_norm: scale residuals by (2 * num_hidden_layers) ** 0.25 (post-LN only).
        layer_wise_gradient_decay_ratio: gradients are multiplied by this before every layer (training only).
        hidden_dropout, attention_dropout, activation_dropout, input_dropout, layerdrop: regularisation.
        num_conv_pos_embeddings, num_conv_pos_embedding_groups: kernel size and groups of the convolutional
            positional embedding.
        conv_pos_weight_norm: keep the positional convolution weight-normed (as trained); False = folded weight.
        relative_position_embedding, num_buckets, max_distance: T5-style bucketed relative position bias over
            the flattened patch index.
        gated_relative_position_bias: gate the bias per query with the query vector (gru_rel_pos).
        classifier_dropout: dropout before the per-patch classifier.
        label_mids: AudioSet MIDs of the labels, in id order, when the checkpoint has them.
        num_mel_bins, sampling_rate, frame_shift_ms: the front end the model expects.
        sed_head: settings of the PretrainedSED prediction head for [`BeatsForAudioFrameClassification`]
            (`audiozoo.layers.sed_head.SedHeadSettings`); None: the per-patch classifier averaged per time step.
        padding_mask_rule: how the frame mask becomes a patch mask. "original" (default, for parity): the
            unilm chunk rule, where a patch is padding only if all frames of its chunk of the flattened sequence
            are, so a partly padded time step counts as audio. "exact": a time step is audio only if all of its
            frames are, which makes a clip's outputs independent of how it is padded in a batch.
    """

    model_type = "audiozoo-beats"

    patch_size: int = 16
    patch_embed_dim: int = 512
    patch_embed_bias: bool = False
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = True
    layer_wise_gradient_decay_ratio: float = 0.6
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    input_dropout: float = 0.0
    layerdrop: float = 0.05
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    conv_pos_weight_norm: bool = True
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    gated_relative_position_bias: bool = True
    layer_norm_eps: float = 1e-5
    classifier_dropout: float = 0.0
    initializer_range: float = 0.02
    label_mids: list[str] | None = None
    num_mel_bins: int = 128
    sampling_rate: int = 16000
    frame_shift_ms: float = 10.0
    padding_mask_rule: str = "original"
    sed_head: dict | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.validate_architecture()

    def validate_architecture(self) -> None:
        """Reject combinations the original code cannot build, with a message that says why."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})"
            )
        if self.deep_norm and self.layer_norm_first:
            raise ValueError("deep_norm and layer_norm_first cannot both be set (the original asserts the same)")
        if self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise ValueError(
                f"hidden_act={self.hidden_act!r} is not supported; expected one of {SUPPORTED_ACTIVATIONS} "
                "(no released BEATs checkpoint uses another)"
            )
        if self.hidden_size % self.num_conv_pos_embedding_groups:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_conv_pos_embedding_groups "
                f"({self.num_conv_pos_embedding_groups})"
            )
        if self.padding_mask_rule not in ("original", "exact"):
            raise ValueError(f"padding_mask_rule must be 'original' or 'exact', got {self.padding_mask_rule!r}")
        if self.patch_size <= 0 or self.num_mel_bins < self.patch_size:
            raise ValueError(
                f"patch_size must be in [1, num_mel_bins={self.num_mel_bins}], got {self.patch_size}"
            )

    @property
    def num_frequency_patches(self) -> int:
        """Patches per time step (mel bins // patch size; 8 for the released models)."""
        return self.num_mel_bins // self.patch_size

    @property
    def native_frame_rate(self) -> float:
        """Time steps per second of the per-patch frame head: one step = `patch_size` filterbank frames."""
        return 1000.0 / (self.patch_size * self.frame_shift_ms)

    @property
    def min_num_frames(self) -> int:
        """Shortest filterbank input that yields one patch."""
        return self.patch_size


class BeatsTokenizerConfig(BeatsConfig):
    r"""Configuration of [`BeatsTokenizerModel`]: the BEATs encoder followed by a quantizer.

    Args:
        codebook_size: number of codebook entries (quant_n).
        codebook_dim: dimension of a codebook entry (quant_dim).
        (all other fields as [`BeatsConfig`]; the released tokenizers have no layer-wise gradient decay)
    """

    model_type = "audiozoo-beats-tokenizer"

    layer_wise_gradient_decay_ratio: float = 1.0
    codebook_size: int = 1024
    codebook_dim: int = 256


__all__ = ["BeatsConfig", "BeatsTokenizerConfig", "ORIGINAL_FIELD_NAMES"]
