"""Uploading a model folder to the Hugging Face Hub: exactly its model files, with its code and a card.

`push_model_folder` serves `audiozoo push FOLDER REPO` and `convert --push_to_hub`. It checks that the folder is an
audiozoo model (config.json of a known `model_type`, safetensors weights, a feature extractor), completes what a
folder saved by an older audiozoo lacks (the remote code and `auto_map` of `remote_code.py`), writes a model card
when there is none (for a `finetune` / `distill` output one made from its config and results.json) and uploads only
the files on the allow-list: the JSON configs, the weights, the card and the family's own code files, by name.
Anything else in the folder (checkpoints/, best/, results.json, logs, notes) stays local; results.json's figures
are in the card, and the file itself holds local paths.

Torch-free at import: the command line imports this before any model code.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..families import ModelFamily, family_of
from .model_cards import (
    is_finetune_results,
    license_of,
    redistribution_allowed,
    render_finetuned_card,
    render_model_card,
)
from .remote_code import has_remote_code, remote_code_file_names, write_remote_code

logger = logging.getLogger(__name__)

MODEL_FILES: tuple[str, ...] = (
    "config.json",
    "preprocessor_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "README.md",
)
"""What every model folder may upload besides weight shards and its family's code (`upload_allow_list`)."""


def upload_allow_list(folder: str | Path, family: ModelFamily) -> list[str]:
    """The names `upload_folder` may send, wildcard-free: `MODEL_FILES`, the shards model.safetensors.index.json
    lists (model-00001-of-00002.safetensors, ...) and the names of the family's remote-code files (no `*.py`: a
    stray script in the folder is no code of the model)."""
    index = Path(folder) / "model.safetensors.index.json"
    shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())) if index.is_file() \
        else []
    return [*MODEL_FILES, *shards, *remote_code_file_names(family)]


def check_model_folder(folder: str | Path) -> ModelFamily:
    """The family of a folder `from_pretrained` can load as an audiozoo model; a ValueError or FileNotFoundError that
    says what is missing otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is no folder: pass the folder `audiozoo convert`, `finetune` or "
                                "`save_pretrained` wrote")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: it is not a model folder (the output of `audiozoo "
                                "convert`, `finetune` or `save_pretrained`)")
    try:
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from None
    try:
        family = family_of(model_type)
    except ValueError:
        raise ValueError(f"{config_path}: model_type {model_type!r} is not an audiozoo model; `audiozoo push` uploads "
                         "audiozoo models (use huggingface_hub's `hf upload` for others)") from None
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        missing = sorted(shard for shard in shards if not (folder / shard).is_file())
        if missing:
            raise FileNotFoundError(f"{folder}: weight shards listed in {index.name} are missing: {missing}")
    elif not (folder / "model.safetensors").is_file():
        hint = (" (only PyTorch pickles: re-save the model with `save_pretrained`, which writes safetensors)"
                if any(folder.glob("pytorch_model*.bin")) else
                " (a fine-tuning run writes its model when it ends; `best/` holds the best epoch's)"
                if (folder / "best").is_dir() else "")
        raise FileNotFoundError(f"{folder} has no weights: model.safetensors or model.safetensors.index.json "
                                f"expected{hint}")
    if not (folder / "preprocessor_config.json").is_file():
        raise FileNotFoundError(f"{folder} has no preprocessor_config.json: save the feature extractor beside the model "
                                "(`feature_extractor.save_pretrained(folder)`); the Hub model needs its front end")
    return family


def write_model_card(folder: str | Path, family: ModelFamily, repo_id: str) -> Path:
    """README.md for a folder without one: from results.json for a fine-tuned model, else the generic card."""
    folder = Path(folder)
    config = family.load(family.prefix + "Config").from_pretrained(folder)
    results_path = folder / "results.json"
    results = json.loads(results_path.read_text(encoding="utf-8")) if results_path.is_file() else None
    if results is not None and is_finetune_results(results):
        card = render_finetuned_card(config, results, repo_id)
    else:
        card = render_model_card(None, config, hub_id=repo_id,
                                 description=f"A {family.prefix} model (`{family.model_type}`) saved with audiozoo.")
    path = folder / "README.md"
    path.write_text(card, encoding="utf-8")
    return path


def files_to_upload(folder: str | Path, allow_patterns: list[str]) -> list[str]:
    """The folder's files (relative POSIX paths) that `upload_folder(allow_patterns=...)` sends, matched the way
    huggingface_hub matches them."""
    from huggingface_hub.utils import filter_repo_objects

    folder = Path(folder)
    paths = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return list(filter_repo_objects(paths, allow_patterns=allow_patterns))


def check_redistribution(folder: Path, family: ModelFamily, own_weights: bool) -> None:
    """Refuse to upload a model of a family whose released weights may not be redistributed (BYOL-A and the M2D
    students: NTT's evaluation license; the ASiT students: no license) unless the caller says the weights are theirs
    to share (trained from scratch, or shared with the rights holder's permission)."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    card_family = "beats_sed" if family.model_type == "audiozoo-beats" and config.get("sed_head") else family.package
    if own_weights or redistribution_allowed(card_family):
        return
    primary, _ = license_of(card_family)
    raise PermissionError(
        f"{folder} holds a {family.prefix} model: the released {family.prefix} weights are under {primary.title}, "
        f"which does not allow redistribution ({primary.restriction}). Weights converted or fine-tuned from them may "
        "not be uploaded; if these weights are yours to share (trained from scratch, or with the rights holder's "
        "permission), pass own_weights=True (`audiozoo push ... --own_weights`)")


def push_model_folder(folder: str | Path, repo_id: str, *, private: bool = False,
                      commit_message: str | None = None, own_weights: bool = False) -> list[str]:
    """Upload the model files of `folder` to the Hub repo `repo_id` (created if needed). Writes the remote code
    when the folder lacks it and README.md when it has none. Returns the files uploaded.

    own_weights: the weights are the caller's to share; needed for the families whose released weights may not be
    redistributed (`check_redistribution`)."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    family = check_model_folder(folder)
    check_redistribution(folder, family, own_weights)
    if not has_remote_code(folder):
        write_remote_code(folder)
    api = HfApi()
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if not (folder / "README.md").is_file():
        write_model_card(folder, family, repo_id)
    allow = upload_allow_list(folder, family)
    names = files_to_upload(folder, allow)
    logger.info("uploading %s to %s", ", ".join(names), repo_id)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, allow_patterns=allow,
                      commit_message=commit_message or f"Upload {family.model_type} model with audiozoo")
    return names


__all__ = ["MODEL_FILES", "check_model_folder", "check_redistribution", "files_to_upload", "push_model_folder", "upload_allow_list",
           "write_model_card"]
