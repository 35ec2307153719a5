"""frame-MobileNet (PretrainedSED `frame_mn`): EfficientAT MobileNetV3 as a 40 ms frame encoder and detector."""

from ..fpasst.feature_extraction_fpasst import PasstMelFeatureExtractor
from .configuration_frame_mn import FrameMnConfig
from .mobilenet import (
    FRAME_MN_BLOCKS,
    FRAME_MN_PREFIX,
    BlockConfig,
    FrameMobileNetEncoder,
    extract_encoder_state_dict,
    make_divisible,
    width_from_state_dict,
)
from .modeling_frame_mn import (
    FrameMnForAudioClassification,
    FrameMnForAudioFrameClassification,
    FrameMnModel,
    FrameMnPreTrainedModel,
)

__all__ = [
    "FRAME_MN_BLOCKS",
    "FRAME_MN_PREFIX",
    "BlockConfig",
    "FrameMnConfig",
    "FrameMnForAudioClassification",
    "FrameMnForAudioFrameClassification",
    "FrameMnModel",
    "FrameMnPreTrainedModel",
    "FrameMobileNetEncoder",
    "PasstMelFeatureExtractor",
    "extract_encoder_state_dict",
    "make_divisible",
    "width_from_state_dict",
]
