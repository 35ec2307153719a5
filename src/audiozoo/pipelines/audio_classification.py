"""`pipeline("audio-classification")` that decodes with soundfile and resamples with soxr.

transformers' own pipeline decodes paths with the ffmpeg binary and resamples with torchaudio; neither is
a dependency here. After `import audiozoo` the task uses this subclass, which accepts everything the parent
accepts plus integer PCM, multi-channel arrays and a `sampling_rate=` call argument, for any model.
"""

from __future__ import annotations

from transformers.pipelines import PIPELINE_REGISTRY, AudioClassificationPipeline

from .audio_input import decode_audio_input


class AudiozooAudioClassificationPipeline(AudioClassificationPipeline):
    """Audio classification with file decoding (soundfile), down-mixing and resampling (soxr) built in."""

    def _sanitize_parameters(self, top_k=None, function_to_apply=None, sampling_rate=None, **kwargs):
        preprocess_params, forward_params, postprocess_params = super()._sanitize_parameters(
            top_k=top_k, function_to_apply=function_to_apply, **kwargs
        )
        if sampling_rate is not None:
            preprocess_params["sampling_rate"] = sampling_rate
        return preprocess_params, forward_params, postprocess_params

    def preprocess(self, inputs, sampling_rate: int | None = None):
        target = self.feature_extractor.sampling_rate
        waveform = decode_audio_input(inputs, target, sampling_rate)
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
