"""`save_pretrained` that leaves a folder plain transformers can load (`trust_remote_code=True`), for every model and
feature extractor of the package: after transformers has written its files, the family's code is copied flat beside
them and `auto_map` written (audiozoo.hub.remote_code). So a fine-tuned model, or any model loaded, changed and saved
(`push_to_hub` saves the same way), carries its code, as a converted one does.

This file is itself part of that code: in a folder loaded as remote code, without audiozoo, the classes live in
`transformers_modules` and saving is transformers' own (it copies the loaded modules and keeps `auto_map`). The
package is therefore imported by name, lazily, and only for the package's own classes.
"""

from __future__ import annotations

import importlib
import inspect
import os


class RemoteCodeSavingMixin:
    """First base of the package's PreTrainedModel and feature-extractor bases: their `save_pretrained` (and every
    upload transformers makes of a saved folder) also writes the remote code and `auto_map` of the saved folder."""

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs):
        result = super().save_pretrained(save_directory, *args, **kwargs)
        arguments = inspect.signature(super().save_pretrained).bind(save_directory, *args, **kwargs).arguments
        if arguments.get("is_main_process", True) and os.path.isdir(save_directory):
            self._write_remote_code(save_directory)
        return result

    def _upload_modified_files(self, working_dir: str | os.PathLike, *args, **kwargs):
        # `save_pretrained(..., push_to_hub=True)` uploads before returning: the code must be there by then
        self._write_remote_code(working_dir)
        return super()._upload_modified_files(working_dir, *args, **kwargs)

    def _write_remote_code(self, folder: str | os.PathLike) -> None:
        if type(self).__module__.split(".")[0] != "audiozoo":  # remote code, or a user's subclass elsewhere
            return
        try:
            remote_code = importlib.import_module("audiozoo.hub.remote_code")
        except ImportError:
            return
        remote_code.write_saved_object_code(folder, type(self))


__all__ = ["RemoteCodeSavingMixin"]
