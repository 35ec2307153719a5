"""Blocks every model family builds on: attention, ViT blocks, masks, heads and the PretrainedSED head."""
