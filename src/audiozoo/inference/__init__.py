"""Inference beyond one clip: embeddings of files and datasets."""
