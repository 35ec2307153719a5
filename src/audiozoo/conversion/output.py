"""Writing a converted model: weights, configs, model card and remote code, verified by reloading."""

from __future__ import annotations

from pathlib import Path

from ..hub_export import write_remote_code
from .verify import verify_round_trip


def save_converted(model, feature_extractor, output_dir: str | Path, *, family: str, card: str | None,
                   push_to_hub: str | None = None) -> Path:
    """Write OUT/{config.json, model.safetensors, preprocessor_config.json, README.md, *.py}, then reload it
    through the Auto classes and compare outputs, so a folder that does not round-trip is never reported as
    converted. `push_to_hub` uploads the whole folder to that repo."""
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    feature_extractor.save_pretrained(output_dir)
    if card is not None:
        (output_dir / "README.md").write_text(card, encoding="utf-8")
    write_remote_code(output_dir, family)
    verify_round_trip(model, feature_extractor, output_dir)
    if push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(push_to_hub, exist_ok=True)
        api.upload_folder(folder_path=str(output_dir), repo_id=push_to_hub, commit_message="Convert with audiozoo")
    return output_dir
