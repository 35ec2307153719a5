"""Uploading a model folder to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path


def push_folder(folder: str | Path, repo_id: str, commit_message: str) -> None:
    """Create `repo_id` if needed and upload `folder` to it."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message)
