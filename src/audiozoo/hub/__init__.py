"""The Hub side: remote code written beside the weights, model cards, and uploads of model folders."""
