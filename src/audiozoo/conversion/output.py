"""Writing a converted model: weights, configs, model card and remote code, verified by reloading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..hub.push import push_model_folder
from .verify import verify_round_trip


def save_converted(model, feature_extractor, output_dir: str | Path, *, card: str | None,
                   push_to_hub: str | None = None) -> Path:
    """Write OUT/{config.json, model.safetensors, preprocessor_config.json, README.md, *.py} (`save_pretrained` of
    the package's classes writes the remote code), then reload it through the Auto classes and compare, so a folder
    that does not round-trip is never reported as converted. `push_to_hub` uploads its model files to that repo
    (`hub.push.push_model_folder`: the allow-listed files only)."""
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    feature_extractor.save_pretrained(output_dir)
    if card is not None:
        (output_dir / "README.md").write_text(card, encoding="utf-8")
    verify_round_trip(model, feature_extractor, output_dir)
    if push_to_hub:
        push_model_folder(output_dir, push_to_hub, commit_message="Convert with audiozoo")
    return output_dir


def convert_and_save_with(convert: Callable, checkpoint_path: str | Path, output_dir: str | Path, *,
                          push_to_hub: str | None = None, **options) -> Path:
    """`convert(checkpoint_path, **options) -> (model, feature extractor)`, then `save_converted` with the release's
    model card (a generic card for a file that is no known release)."""
    from ..hub.model_cards import find_release, render_model_card

    model, feature_extractor = convert(checkpoint_path, **options)
    card = render_model_card(find_release(Path(checkpoint_path).name), model.config)
    return save_converted(model, feature_extractor, output_dir, card=card, push_to_hub=push_to_hub)
