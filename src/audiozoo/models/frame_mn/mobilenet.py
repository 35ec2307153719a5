"""Frame-level MobileNetV3 encoder ("frame_mn") of PretrainedSED (Schmid et al.), from EfficientAT.

A plain torch port of ``models/frame_mn`` (EfficientAT MobileNetV3 without classifier): log-mel
[B, 1, 128, T] -> [B, ceil(ceil(T/2)/2), 6 * c15]. Frequency is downsampled by 128 (to one bin), time by 4
(10 ms hop -> 40 ms frames). Module names mirror the original (torchvision ``ConvNormActivation`` layout and
EfficientAT's ``ConcurrentSEBlock``), so the released ``model.frame_mn.*`` tensors load strictly after the
prefix is stripped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "FRAME_MN_BLOCKS",
    "FRAME_MN_PREFIX",
    "BlockConfig",
    "FrameMobileNetEncoder",
    "extract_encoder_state_dict",
    "make_divisible",
    "width_from_state_dict",
]

FRAME_MN_PREFIX = "model.frame_mn."
"""Prefix of the encoder tensors in the released ``frame_mn*_strong_1.pt`` files (PredictionsWrapper layout)."""


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` (never below ``min_value``, never >10% down).

    Same rule as the TF/torchvision/EfficientAT helper, so scaled channel counts match the checkpoints.
    """
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


class BlockConfig(NamedTuple):
    """One inverted-residual row at width 1.0 (input channels follow from the previous row's output)."""

    kernel: int
    expanded: int
    out: int
    use_se: bool
    activation: str  # "RE" (ReLU) or "HS" (Hardswish)
    freq_stride: int
    time_stride: int


FIRST_CONV_CHANNELS = 16
"""Output channels of features[0] at width 1.0 (= input channels of the first block)."""

FIRST_CONV_STRIDE = 2
"""Stride of features[0] in both frequency and time."""

LAST_CONV_EXPANSION = 6
"""features[16] maps c15 -> 6 * c15 channels (the encoder's output width)."""

# Rows of EfficientAT's _mobilenet_v3_conf with the frame_mn default strides:
# f strides (1,2,2,1,1,2,1,2,1,1,2,1,1,1,2), t strides (1,2,1,...,1). Not dilated, no reduced tail.
FRAME_MN_BLOCKS: tuple[BlockConfig, ...] = (
    BlockConfig(3, 16, 16, False, "RE", 1, 1),
    BlockConfig(3, 64, 24, False, "RE", 2, 2),
    BlockConfig(3, 72, 24, False, "RE", 2, 1),
    BlockConfig(5, 72, 40, True, "RE", 1, 1),
    BlockConfig(5, 120, 40, True, "RE", 1, 1),
    BlockConfig(5, 120, 40, True, "RE", 2, 1),
    BlockConfig(3, 240, 80, False, "HS", 1, 1),
    BlockConfig(3, 200, 80, False, "HS", 2, 1),
    BlockConfig(3, 184, 80, False, "HS", 1, 1),
    BlockConfig(3, 184, 80, False, "HS", 1, 1),
    BlockConfig(3, 480, 112, True, "HS", 2, 1),
    BlockConfig(3, 672, 112, True, "HS", 1, 1),
    BlockConfig(5, 672, 160, True, "HS", 1, 1),
    BlockConfig(5, 960, 160, True, "HS", 1, 1),
    BlockConfig(5, 960, 160, True, "HS", 2, 1),
)

SE_REDUCTION = 4
"""Squeeze channels = make_divisible(expanded // 4, 8) (EfficientAT se_r=4)."""

FREQ_DOWNSAMPLING = FIRST_CONV_STRIDE * math.prod(row.freq_stride for row in FRAME_MN_BLOCKS)  # 128
TIME_DOWNSAMPLING = FIRST_CONV_STRIDE * math.prod(row.time_stride for row in FRAME_MN_BLOCKS)  # 4


def _activation(name: str | None) -> nn.Module | None:
    """The block activation for a config code ("RE" -> ReLU, "HS" -> Hardswish, None -> no activation)."""
    if name is None:
        return None
    if name == "RE":
        return nn.ReLU()
    if name == "HS":
        return nn.Hardswish()
    raise ValueError(f"unknown activation code {name!r}; expected 'RE' or 'HS'")


class ConvNormAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d [-> activation], indexed 0/1/2 like torchvision's ConvNormActivation.

    The index layout is what gives the checkpoint keys ``...0.weight`` (conv) and ``...1.*`` (BatchNorm).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: tuple[int, int] = (1, 1),
        groups: int = 1,
        activation: str | None = None,
        batch_norm_eps: float = 1e-3,
        batch_norm_momentum: float = 0.01,
    ) -> None:
        padding = (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups,
                      bias=False),
            nn.BatchNorm2d(out_channels, eps=batch_norm_eps, momentum=batch_norm_momentum),
        ]
        act = _activation(activation)
        if act is not None:
            layers.append(act)
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel squeeze-and-excitation: mean over (freq, time) -> fc1 -> ReLU -> fc2 -> sigmoid -> rescale."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze_channels)
        self.fc2 = nn.Linear(squeeze_channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        """Scale each channel of x [B, C, F, T] by a gate computed from its global mean."""
        scale = x.mean(dim=(2, 3))
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(scale))))
        return x * scale[:, :, None, None]


class ConcurrentSEBlock(nn.Module):
    """EfficientAT's wrapper around concurrent SE layers; the released models use one (channel) layer.

    With a single layer the original's max-aggregation over layers is the identity, so only that layer runs.
    Kept as a module so the keys read ``block.N.conc_se_layers.0.fc{1,2}.*``.
    """

    def __init__(self, channels: int, reduction: int = SE_REDUCTION) -> None:
        super().__init__()
        squeeze = make_divisible(channels // reduction, 8)
        self.conc_se_layers = nn.ModuleList([SqueezeExcitation(channels, squeeze)])

    def forward(self, x: Tensor) -> Tensor:
        """Apply the (single) channel SE layer."""
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    """MobileNetV3 block: [expand 1x1] -> depthwise kxk (stride f,t) -> [SE] -> project 1x1 (+ skip)."""

    def __init__(
        self,
        in_channels: int,
        row: BlockConfig,
        width_mult: float,
        batch_norm_eps: float,
        batch_norm_momentum: float,
    ) -> None:
        super().__init__()
        expanded = make_divisible(row.expanded * width_mult, 8)
        out_channels = make_divisible(row.out * width_mult, 8)
        stride = (row.freq_stride, row.time_stride)
        norm = {"batch_norm_eps": batch_norm_eps, "batch_norm_momentum": batch_norm_momentum}
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(ConvNormAct(in_channels, expanded, 1, activation=row.activation, **norm))
        layers.append(ConvNormAct(expanded, expanded, row.kernel, stride=stride, groups=expanded,
                                  activation=row.activation, **norm))
        if row.use_se:
            layers.append(ConcurrentSEBlock(expanded))
        layers.append(ConvNormAct(expanded, out_channels, 1, activation=None, **norm))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_channels
        self.use_residual = stride == (1, 1) and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        """Run the block on x [B, C, F, T]."""
        out = self.block(x)
        return out + x if self.use_residual else out


class FrameMobileNetEncoder(nn.Module):
    """Frame-MobileNet (EfficientAT MobileNetV3, PretrainedSED ``frame_mn``) as a sequence encoder.

    Input: log-mel ``[B, 1, F, T]`` with F <= 128 (the released models use 128 mel bins, 10 ms hop).
    Output: ``[B, T', hidden_size]`` with ``T' = ceil(ceil(T / 2) / 2)`` (40 ms frames) and
    ``hidden_size = 6 * make_divisible(160 * width_mult, 8)`` (960 for mn10, 576 for mn06).
    ``state_dict()`` keys are ``features.{0..16}...`` exactly as in the original's ``frame_mn`` sub-module.
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        batch_norm_eps: float = 1e-3,
        batch_norm_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        self.width_mult = float(width_mult)
        norm = {"batch_norm_eps": batch_norm_eps, "batch_norm_momentum": batch_norm_momentum}
        channels = make_divisible(FIRST_CONV_CHANNELS * width_mult, 8)
        layers: list[nn.Module] = [
            ConvNormAct(1, channels, 3, stride=(FIRST_CONV_STRIDE, FIRST_CONV_STRIDE), activation="HS", **norm)
        ]
        for row in FRAME_MN_BLOCKS:
            block = InvertedResidual(channels, row, width_mult, **norm)
            layers.append(block)
            channels = block.out_channels
        self.hidden_size = LAST_CONV_EXPANSION * channels
        layers.append(ConvNormAct(channels, self.hidden_size, 1, activation="HS", **norm))
        self.features = nn.Sequential(*layers)
        self._init_weights()

    def _init_weights(self) -> None:
        """Same initialisation as the original (only matters for training from scratch)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    @staticmethod
    def output_length(num_frames: int) -> int:
        """Number of output frames for ``num_frames`` input frames (each stride-2 conv rounds up)."""
        length = num_frames
        for _ in range(int(math.log2(TIME_DOWNSAMPLING))):
            length = (length + 1) // 2
        return length

    def forward(self, mel: Tensor, stage_outputs: list[Tensor] | None = None) -> Tensor:
        """Encode a log-mel batch [B, 1, F, T] into frame embeddings [B, T', hidden_size]; with a list as
        `stage_outputs`, every feature stage's output is appended to it on the way (one pass either way)."""
        self.check_input(mel)
        if stage_outputs is None:
            x = self.features(mel)
        else:
            x = mel
            for stage in self.features:
                x = stage(x)
                stage_outputs.append(x)
        return x.squeeze(2).permute(0, 2, 1)

    @staticmethod
    def check_input(mel: Tensor) -> None:
        """Refuse input that is not [B, 1, F <= 128-ish, T >= 1]."""
        if mel.dim() != 4 or mel.shape[1] != 1:
            raise ValueError(f"expected a log-mel tensor of shape [batch, 1, n_mels, frames], got {tuple(mel.shape)}")
        if not 1 <= mel.shape[2] <= FREQ_DOWNSAMPLING:
            raise ValueError(
                f"frame_mn reduces frequency by {FREQ_DOWNSAMPLING} to a single bin; got {mel.shape[2]} mel bins "
                f"(the released models use 128)"
            )
        if mel.shape[3] < 1:
            raise ValueError("expected at least one time frame")


def extract_encoder_state_dict(state_dict: Mapping[str, Tensor], prefix: str = FRAME_MN_PREFIX) -> dict[str, Tensor]:
    """The encoder's tensors from a full checkpoint, with ``prefix`` stripped (heads and others dropped)."""
    out = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    if not out:
        raise ValueError(f"no keys start with {prefix!r}; is this a frame_mn checkpoint?")
    return out


def _shapes(state_dict: Mapping[str, Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def _candidate_widths(estimate: float) -> Iterable[float]:
    """Widths to try, coarse grids first (0.1, 0.05, 0.01), each ordered by distance to the estimate."""
    seen: set[float] = set()
    for step in (0.1, 0.05, 0.01):
        grid = [round(k * step, 2) for k in range(1, round(4.0 / step) + 1)]
        for width in sorted(grid, key=lambda w: (abs(w - estimate), w)):
            if width not in seen:
                seen.add(width)
                yield width


def width_from_state_dict(state_dict: Mapping[str, Tensor], prefix: str = FRAME_MN_PREFIX) -> float:
    """Infer ``width_mult`` from tensor shapes (checkpoint names can lie: there is no 'frame_mn03' preset).

    Channel counts are quantised by make_divisible, so several widths give the same network; the roundest one
    (0.1 grid first, then 0.05, then 0.01, nearest to c15 / 160) whose full shape table matches is returned.
    Raises ValueError when no width in (0, 4] reproduces every encoder shape.
    """
    encoder = _shapes(extract_encoder_state_dict(state_dict, prefix))
    try:
        first = encoder["features.0.0.weight"][0]
        last_in = encoder["features.16.0.weight"][1]
    except KeyError as err:
        raise ValueError(f"missing frame_mn tensor {err.args[0]!r} under prefix {prefix!r}") from None
    estimate = last_in / FRAME_MN_BLOCKS[-1].out
    for width in _candidate_widths(estimate):
        if make_divisible(FIRST_CONV_CHANNELS * width, 8) != first:
            continue
        if make_divisible(FRAME_MN_BLOCKS[-1].out * width, 8) != last_in:
            continue
        with torch.device("meta"):
            reference = FrameMobileNetEncoder(width_mult=width)
        if _shapes(reference.state_dict()) == encoder:
            return width
    raise ValueError(
        f"no width_mult in (0, 4] reproduces these frame_mn shapes (first conv {first} channels, last block "
        f"{last_in}); not a default frame_mn topology (reduced tail / custom strides are not supported)"
    )
