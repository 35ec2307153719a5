"""`pipeline("audio-classification")` that decodes with soundfile and resamples with soxr.

transformers' own pipeline decodes paths with the ffmpeg binary and resamples with torchaudio; neither is
a dependency here. After `import audiozoo` the task uses this subclass for every model. It keeps the parent's
behaviour for what the parent handles and we do not (URLs, which the parent fetches; torchcodec decoders; with
ffmpeg installed, files in formats libsndfile cannot read) and adds integer PCM, multi-channel arrays, a
`sampling_rate=` call argument, `allow_truncated=`, and the input checks of `decode_audio_input`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import soundfile
from transformers.pipelines import PIPELINE_REGISTRY, AudioClassificationPipeline

from ..audio.io import LibsndfileDecodeError
from .audio_input import decode_audio_input, is_url, minimum_samples, name_list_items, unwrap


def _parent_handles(audio) -> bool:
    """Inputs the parent decodes and `decode_audio_input` does not: URLs (the parent fetches them) and torchcodec
    decoders. The parent's own test for torchcodec, so that nothing is imported here."""
    if is_url(audio):
        return True
    torchcodec = sys.modules.get("torchcodec")
    if torchcodec is not None and isinstance(audio, torchcodec.decoders.AudioDecoder):
        return True
    return False


def _ffmpeg_format(audio) -> bool:
    """A file libsndfile could not read, whose extension is none of its formats, where the ffmpeg binary that the
    parent runs is installed (m4a, aac, webm, ...): the parent decoded these before audiozoo was imported."""
    if not isinstance(audio, (str, Path)) or shutil.which("ffmpeg") is None:
        return False
    known = {name.lower() for name in soundfile.available_formats()} | {"aif", "aifc", "oga", "opus"}
    return Path(audio).suffix.lower().lstrip(".") not in known


class AudiozooAudioClassificationPipeline(AudioClassificationPipeline):
    """Audio classification with file decoding (soundfile), down-mixing and resampling (soxr) built in."""

    def __call__(self, inputs, **kwargs):
        return super().__call__(name_list_items(inputs), **kwargs)

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, sampling_rate=None, allow_truncated=None,
                             **kwargs):
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(
            top_k=top_k, function_to_apply=function_to_apply, **kwargs
        )
        if sampling_rate is not None:
            preprocess_params["sampling_rate"] = sampling_rate
        if allow_truncated is not None:
            preprocess_params["allow_truncated"] = bool(allow_truncated)
        return preprocess_params, forward_params, postprocess_params

    def preprocess(self, inputs, sampling_rate: int | None = None, allow_truncated: bool = False):
        audio, name = unwrap(inputs)
        if _parent_handles(audio):
            return super().preprocess(audio)
        target = self.feature_extractor.sampling_rate
        try:
            waveform = decode_audio_input(audio, target, sampling_rate, allow_truncated=allow_truncated, name=name,
                                          minimum_samples=minimum_samples(self.feature_extractor))
        except LibsndfileDecodeError:
            if _ffmpeg_format(audio):
                return super().preprocess(str(audio))
            raise
        # always return the mask so that items of different lengths can be collated when batch_size > 1
        processed = self.feature_extractor(
            waveform, sampling_rate=target, return_tensors="pt", return_attention_mask=True
        )
        if self.dtype is not None:
            processed = processed.to(dtype=self.dtype)
        return processed


def register_audio_classification_pipeline() -> None:
    """Point the "audio-classification" task at our subclass, keeping the task's default model and types."""
    PIPELINE_REGISTRY.supported_tasks["audio-classification"]["impl"] = AudiozooAudioClassificationPipeline
