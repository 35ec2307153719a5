"""Where clips come from: CSV/TSV manifests, folders of audio files, `datasets` folders (read undecoded).

Training and dataset-scale inference read the same sources through these functions. Nothing here decodes audio
(that is `audiozoo.audio`'s job): a source becomes a list of `Example`s, each a file path or the encoded bytes of
a `datasets` row, its labels, and where it came from (a manifest line, a dataset row) for error messages.

Labelled reading (training) needs a label per clip and a file that exists; unlabelled reading (`labelled=False`,
inference) takes manifests without a label column, any folder of audio files (searched recursively), datasets
without a label column, and leaves missing files to the caller, which reports them with the other bad rows.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
PATH_COLUMNS = ("file", "path", "filename", "audio")
DATASET_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    label: str
    split: str | None
    group: str | None
    line: int


@dataclass(frozen=True)
class Example:
    """One clip: where it is, its labels, and the manifest line it came from (for error messages)."""

    path: Path | None
    labels: tuple[str, ...]
    split: str | None = None
    group: str | None = None
    source: str = ""
    audio: bytes | None = None  # encoded bytes (datasets with Audio(decode=False))
    events: tuple[tuple[float, float, str], ...] = field(default_factory=tuple)
    name: str | None = None  # the file name a dataset recorded for encoded bytes (outputs name the clip by it)


def read_manifest(manifest: str | Path, *, require_label: bool = True, check_files: bool = True) -> list[ManifestRow]:
    """Rows of a CSV/TSV with a file column (file, path, filename or audio; relative to the manifest's folder),
    `label`, and optionally `split` (train/valid/test) and `group`. A missing file, an empty label or an unknown
    split is an error that names the line. `require_label=False` accepts manifests without labels (label "");
    `check_files=False` leaves missing files to the caller."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest not found: {manifest}")
    text = manifest.read_text(encoding="utf-8")
    delimiter = "\t" if manifest.suffix.lower() == ".tsv" or ("\t" in text.splitlines()[0] if text else False) else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = reader.fieldnames or []
    path_column = next((column for column in PATH_COLUMNS if column in columns), None)
    if path_column is None or (require_label and "label" not in columns):
        wanted = f"a file column ({'/'.join(PATH_COLUMNS)})" + (" and 'label'" if require_label else "")
        raise ValueError(f"{manifest}: expected {wanted}, found {columns}")
    rows = []
    for line, record in enumerate(reader, start=2):
        cell = (record.get(path_column) or "").strip()
        if not cell:
            raise ValueError(f"{manifest}, line {line}: empty {path_column!r} cell")
        path = Path(cell)
        path = path if path.is_absolute() else manifest.parent / path
        if check_files and not path.is_file():
            raise FileNotFoundError(f"{manifest}, line {line}: audio file not found: {path}")
        label = (record.get("label") or "").strip()
        if require_label and not label:
            raise ValueError(f"{manifest}, line {line}: empty label")
        split = (record.get("split") or "").strip() or None
        if split not in (None, "train", "valid", "test"):
            raise ValueError(f"{manifest}, line {line}: split must be train, valid or test, got {split!r}")
        rows.append(ManifestRow(path, label, split, (record.get("group") or "").strip() or None, line))
    if not rows:
        raise ValueError(f"{manifest} has no rows")
    return rows


def examples_from_manifest(manifest: str | Path, *, labelled: bool = True) -> list[Example]:
    """Rows of a CSV/TSV manifest (see `read_manifest`); a label cell may hold several labels joined by ";"."""
    rows: list[ManifestRow] = read_manifest(manifest, require_label=labelled, check_files=labelled)
    return [Example(row.path, tuple(part.strip() for part in row.label.split(";") if part.strip()), row.split,
                    row.group, f"{manifest}, line {row.line}") for row in rows]


def examples_from_folder(folder: str | Path, *, labelled: bool = True) -> list[Example]:
    """`folder/<label>/<clip>.wav` -> examples (one label per sub-folder). Unlabelled: every audio file under
    `folder` (any depth, sorted by path), without labels."""
    folder = Path(folder)
    if not labelled:
        paths = sorted(path for path in folder.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file())
        if not paths:
            raise ValueError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
        return [Example(path, (), source=str(path)) for path in paths]
    examples = [Example(path, (path.parent.name,), source=str(path))
                for path in sorted(folder.glob("*/*")) if path.suffix.lower() in AUDIO_SUFFIXES]
    if not examples:
        raise ValueError(f"{folder}: expected audio files in one sub-folder per label (e.g. {folder}/kick/a.wav)")
    return examples


def examples_from_dataset(dataset, audio_column: str = "audio", label_column: str = "label", *,
                          labelled: bool = True) -> list[Example]:
    """A `datasets.Dataset` whose audio column is cast to `Audio(decode=False)` ({"bytes", "path"}): decoded
    later with soundfile, since datasets' own decoding needs torchcodec. Integer labels map to names through the
    column's ClassLabel feature when there is one; unlabelled reading ignores a missing label column."""
    has_labels = label_column in dataset.features
    if labelled and not has_labels:
        raise ValueError(f"the dataset has no {label_column!r} column (columns: {list(dataset.features)})")
    names = getattr(dataset.features.get(label_column), "names", None)
    examples = []
    for index, record in enumerate(dataset):
        audio = record[audio_column]
        if not isinstance(audio, dict) or not (audio.get("bytes") or audio.get("path")):
            raise ValueError(
                f"dataset row {index}: column {audio_column!r} must be cast to Audio(decode=False) "
                f"({{'bytes', 'path'}}), got {type(audio).__name__}"
            )
        labels: tuple[str, ...] = ()
        if has_labels:
            value = record[label_column]
            values = value if isinstance(value, (list, tuple)) else [value]
            labels = tuple(names[item] if names is not None and isinstance(item, int) else str(item)
                           for item in values)
        path = Path(audio["path"]) if audio.get("path") and not audio.get("bytes") else None
        examples.append(Example(path, labels, source=f"dataset row {index}", audio=audio.get("bytes"),
                                name=audio.get("path") or None))
    return examples


def is_dataset_folder(source: str | Path) -> bool:
    """A folder written by `datasets`' `save_to_disk`."""
    return any((Path(source) / name).is_file() for name in DATASET_FILES)


def examples_from_source(source: str | Path, audio_column: str = "audio", label_column: str = "label", *,
                         labelled: bool = True) -> list[Example]:
    """A CSV/TSV manifest, a `datasets` folder written by `save_to_disk` (its audio column is read undecoded), or
    a folder with one sub-folder per label (unlabelled: any folder of audio files)."""
    source = Path(source)
    if source.is_file():
        return examples_from_manifest(source, labelled=labelled)
    if is_dataset_folder(source):
        from datasets import Audio, load_from_disk

        dataset = load_from_disk(str(source))
        if hasattr(dataset, "keys"):  # a DatasetDict: its splits become the split column
            examples = []
            for split in dataset:
                rows = examples_from_dataset(dataset[split].cast_column(audio_column, Audio(decode=False)),
                                             audio_column, label_column, labelled=labelled)
                name = {"validation": "valid"}.get(split, split)
                examples += [Example(e.path, e.labels, name if name in ("train", "valid", "test") else None, e.group,
                                     f"{source} [{split}] {e.source}", e.audio, name=e.name) for e in rows]
            return examples
        return examples_from_dataset(dataset.cast_column(audio_column, Audio(decode=False)), audio_column,
                                     label_column, labelled=labelled)
    if source.is_dir():
        return examples_from_folder(source, labelled=labelled)
    kind = "a folder of label sub-folders" if labelled else "a folder of audio files"
    raise FileNotFoundError(f"data not found: {source} (expected a manifest, a datasets folder or {kind})")


def example_file(example: Example):
    """What soundfile reads for an example: its path, or its encoded bytes as a file object."""
    return example.path if example.audio is None else io.BytesIO(example.audio)


def example_name(example: Example, root: str | Path | None = None) -> str:
    """The clip's name for outputs: its path relative to `root` (a manifest's folder, a data folder) when it lies
    under it, else the path as it is; for bytes from a dataset, the file name the dataset recorded, else its row."""
    if example.path is None and example.name:
        return example.name
    if example.path is not None:
        if root is not None:
            try:
                return example.path.relative_to(root).as_posix()
            except ValueError:
                pass
        return example.path.as_posix()
    return example.source


__all__ = [
    "AUDIO_SUFFIXES",
    "Example",
    "ManifestRow",
    "example_file",
    "example_name",
    "examples_from_dataset",
    "examples_from_folder",
    "examples_from_manifest",
    "examples_from_source",
    "is_dataset_folder",
    "read_manifest",
]
