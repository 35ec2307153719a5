"""Shards of a dataset-scale run: written atomically as they finish, found again on resume, merged at the end.

A run over N clips has ceil(N / shard_size) shards; shard k holds rows [k * shard_size, (k + 1) * shard_size) of the
data source, whichever process computed it, so the shards (and the merged file) do not depend on the number of
processes. Shard files live in `<output>.shards/` for an `.h5` output (removed after the merge) or in the output
folder itself (kept, with an `index.json`).

Shard file (HDF5), rows in source order:
  rows [n] int64        the clips' positions in the data source
  filenames [n] str     the clips' names (paths relative to the manifest's folder / the data folder)
  values                clip outputs stacked [n, ...]; frame outputs concatenated along their time axis
  num_frames [n] int64  (frame outputs) each clip's frames in `values`
  error_rows [m] int64, error_messages [m] str: clips that could not be read or run (on_error="skip")
  attrs: shard, complete

Merged file (HDF5), clips in source order (skipped rows left out):
  <values name> [N, ...]     clip outputs, or frame outputs when every clip has as many frames; with differing
                             frame counts either padded along time to the longest (with the task's pad value;
                             pseudo labels: -20.0) or, without a pad value, concatenated along time [sum T, ...]
                             with `offsets` [N + 1] (clip i = values[offsets[i]:offsets[i + 1]])
  num_frames [N]             (frame outputs) frames of each clip
  filenames [N] str, rows [N] int64, labels [C] str (classifiers)
  attrs: task, model (or teachers), level, layer, frame_rate, layout (stacked | padded | ragged), settings (JSON)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

SHARD_PATTERN = "shard-{:05d}.h5"
RUN_FILE = "run.json"
INDEX_FILE = "index.json"
MERGED_SUFFIXES = (".h5", ".hdf5")


def is_merged_output(output: str | Path) -> bool:
    """An `.h5` / `.hdf5` output is one merged file; any other path is a folder of shards with an index."""
    return Path(output).suffix.lower() in MERGED_SUFFIXES


def shard_folder(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".shards") if is_merged_output(output) else output


def errors_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".errors.tsv") if is_merged_output(output) else output / "errors.tsv"


def shard_path(folder: Path, index: int) -> Path:
    return folder / SHARD_PATTERN.format(index)


def _strings(values) -> np.ndarray:
    return np.array([str(value) for value in values], dtype=object)


def _decode(values) -> list[str]:
    return [value.decode() if isinstance(value, bytes) else str(value) for value in values]


def write_shard(path: Path, index: int, rows: list[int], names: list[str], values: list[np.ndarray],
                errors: list[tuple[int, str]], time_axis: int | None, dtype) -> None:
    """Write one shard under a temporary name and rename it: a killed run never leaves a half-written shard."""
    strings = h5py.string_dtype("utf-8")
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with h5py.File(temporary, "w") as handle:
        handle.create_dataset("rows", data=np.asarray(rows, dtype=np.int64))
        handle.create_dataset("filenames", data=_strings(names), dtype=strings)
        if values:
            arrays = [np.asarray(value, dtype=dtype) for value in values]
            if time_axis is None:
                handle.create_dataset("values", data=np.stack(arrays))
            else:
                handle.create_dataset("values", data=np.concatenate(arrays, axis=time_axis))
                handle.create_dataset("num_frames", data=np.array([a.shape[time_axis] for a in arrays], np.int64))
        errors = sorted(errors)
        handle.create_dataset("error_rows", data=np.array([row for row, _ in errors], dtype=np.int64))
        handle.create_dataset("error_messages", data=_strings(message for _, message in errors), dtype=strings)
        handle.attrs["shard"] = index
        handle.attrs["complete"] = True
    os.replace(temporary, path)


def finished_shards(folder: Path, indices) -> set[int]:
    """Those of the shards `indices` whose files are complete (a file that cannot be read is removed and computed
    again). Each process looks at its own shards only, so no two processes touch one file."""
    done = set()
    for index in indices:
        path = shard_path(folder, index)
        if not path.is_file():
            continue
        try:
            with h5py.File(path, "r") as handle:
                if handle.attrs.get("complete") and int(handle.attrs["shard"]) == index:
                    done.add(index)
                    continue
        except OSError:
            pass
        path.unlink()
    return done


@dataclass
class ShardInfo:
    path: Path
    clips: int
    clip_shape: tuple[int, ...] | None  # shape of one clip's output without its time axis (None: no clips)
    num_frames: np.ndarray | None


def read_shard_info(path: Path, time_axis: int | None) -> ShardInfo:
    with h5py.File(path, "r") as handle:
        clips = len(handle["rows"])
        if "values" not in handle:
            return ShardInfo(path, 0, None, None)
        shape = handle["values"].shape
        if time_axis is None:
            return ShardInfo(path, clips, tuple(shape[1:]), None)
        num_frames = handle["num_frames"][:]
        return ShardInfo(path, clips, tuple(size for axis, size in enumerate(shape) if axis != time_axis), num_frames)


def shard_errors(paths: list[Path]) -> list[tuple[int, str]]:
    errors = []
    for path in paths:
        with h5py.File(path, "r") as handle:
            errors += zip(handle["error_rows"][:].tolist(), _decode(handle["error_messages"][:]), strict=True)
    return sorted(errors)


def _set_attributes(handle, attributes: dict) -> None:
    for key, value in attributes.items():
        if value is None:
            continue
        handle.attrs[key] = json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


def merge_shards(paths: list[Path], output: Path, value_name: str, time_axis: int | None, pad_value: float | None,
                 dtype, attributes: dict, labels: list[str] | None) -> str:
    """Merge shards (in source order) into one HDF5 file, one shard in memory at a time; returns the layout."""
    infos = [read_shard_info(path, time_axis) for path in paths]
    shapes = {info.clip_shape for info in infos if info.clips}
    if len(shapes) > 1:
        raise ValueError(f"shards disagree on the output shape {sorted(shapes)}; the run mixed settings")
    clip_shape = shapes.pop() if shapes else ()
    total = sum(info.clips for info in infos)
    frames = np.concatenate([info.num_frames for info in infos if info.clips]) if time_axis is not None and total \
        else np.zeros(0, np.int64)
    layout = "stacked"
    if time_axis is not None and total and frames.min() != frames.max():
        layout = "padded" if pad_value is not None else "ragged"
    longest = int(frames.max()) if total and time_axis is not None else 0

    def full_shape(leading: int, time: int) -> tuple[int, ...]:
        if time_axis is None:
            return (leading, *clip_shape)
        shape = list(clip_shape)
        shape.insert(time_axis, time)
        return (leading, *shape)

    strings = h5py.string_dtype("utf-8")
    temporary = output.with_name(f"{output.name}.tmp-{os.getpid()}")
    with h5py.File(temporary, "w") as handle:
        if layout == "ragged":  # [sum T, ...] along the time axis (time first for frame features [T, D])
            shape = list(clip_shape)
            shape.insert(time_axis, int(frames.sum()))
            values = handle.create_dataset(value_name, shape=tuple(shape), dtype=dtype)
            handle.create_dataset("offsets", data=np.concatenate([[0], np.cumsum(frames)]).astype(np.int64))
        else:
            values = handle.create_dataset(value_name, shape=full_shape(total, longest), dtype=dtype,
                                           fillvalue=pad_value if layout == "padded" else 0)
        names = handle.create_dataset("filenames", shape=(total,), dtype=strings)
        rows = handle.create_dataset("rows", shape=(total,), dtype=np.int64)
        if time_axis is not None:
            handle.create_dataset("num_frames", data=frames)
        start, frame_start = 0, 0
        for info in infos:
            if not info.clips:
                continue
            with h5py.File(info.path, "r") as shard:
                end = start + info.clips
                rows[start:end] = shard["rows"][:]
                names[start:end] = _strings(_decode(shard["filenames"][:]))
                data = shard["values"][:]
                if layout == "ragged":
                    frame_end = frame_start + data.shape[time_axis]
                    index = [slice(None)] * data.ndim
                    index[time_axis] = slice(frame_start, frame_end)
                    values[tuple(index)] = data
                    frame_start = frame_end
                elif time_axis is None:
                    values[start:end] = data
                else:  # split the concatenated frames back into clips, padded to the longest
                    block = np.full(full_shape(info.clips, longest), pad_value if layout == "padded" else 0, dtype)
                    offsets = np.concatenate([[0], np.cumsum(info.num_frames)])
                    for position in range(info.clips):
                        source = [slice(None)] * data.ndim
                        source[time_axis] = slice(offsets[position], offsets[position + 1])
                        target = [slice(None)] * data.ndim
                        target[time_axis] = slice(0, int(info.num_frames[position]))
                        block[(position, *target)] = data[tuple(source)]
                    values[start:end] = block
                start = end
        if labels is not None:
            handle.create_dataset("labels", data=_strings(labels), dtype=strings)
        _set_attributes(handle, {**attributes, "layout": layout})
    os.replace(temporary, output)
    return layout


def write_index(folder: Path, paths: list[Path], value_name: str, time_axis: int | None, attributes: dict,
                labels: list[str] | None) -> Path:
    """For a folder output: index.json lists the shards in source order (the shards stay where they are)."""
    shards = []
    for path in paths:
        with h5py.File(path, "r") as handle:
            rows = handle["rows"][:]
            shards.append({"file": path.name, "clips": int(rows.size),
                           "first_row": int(rows[0]) if rows.size else None,
                           "last_row": int(rows[-1]) if rows.size else None})
    index = {"value_name": value_name, "time_axis": time_axis, "attributes": attributes, "labels": labels,
             "shards": shards, "clips": sum(shard["clips"] for shard in shards)}
    path = folder / INDEX_FILE
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(index, indent=1), encoding="utf-8")
    os.replace(temporary, path)
    return path


def write_errors(path: Path, errors: list[tuple[int, str, str, str]]) -> None:
    """row, source (manifest line / dataset row), file, message; tab-separated."""
    lines = ["row\tsource\tfile\tmessage"]
    for row, source, name, message in errors:
        clean = [str(item).replace("\t", " ").replace("\n", " ") for item in (row, source, name, message)]
        lines.append("\t".join(clean))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_run_settings(folder: Path) -> dict | None:
    path = folder / RUN_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_run_settings(folder: Path, settings: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_FILE
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(settings, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


def settings_differences(old: dict, new: dict) -> list[str]:
    """The settings that differ, as 'name: old -> new'."""
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)]


def remove_shards(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


__all__ = [
    "finished_shards",
    "is_merged_output",
    "merge_shards",
    "read_run_settings",
    "settings_differences",
    "shard_errors",
    "shard_folder",
    "shard_path",
    "write_errors",
    "write_index",
    "write_run_settings",
    "write_shard",
]
