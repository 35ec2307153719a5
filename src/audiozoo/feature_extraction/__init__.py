"""Feature-extractor bases: waveform validation and padding, the Kaldi filterbank and PretrainedSED front ends."""
