"""Training and evaluation loops and their shared pieces (data manifests, linear probes, ...)."""
