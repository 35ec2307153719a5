"""Original checkpoints -> audiozoo models, one module per family (importable and tested)."""
