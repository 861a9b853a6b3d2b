"""Conv features, computed once and cached on disk.

A cache entry is a folder per key (backbone, weights identity, input size, preprocessing,
augmentation variant). Inside, rows are addressed by the image file's content digest, stored in
append-only shards: `shard-*.npy` (memory-mapped on read) committed by its `shard-*.keys` file,
written last. A crash loses at most the shard being written; finished shards are reused, so
extraction resumes where it stopped. Every fold, seed, head and TTA pass reads the same rows.

Extraction (decoding and the forward pass) is `kit.features.extract`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kit.core.atomic import (
    atomic_path,
    atomic_write_text,
    process_alive,
    remove_stale_temps,
    temp_tag,
)
from kit.core.errors import InputError, UnknownNameError

SHARD_ROWS = 512
_SHARD = re.compile(r"^shard-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{32}\.npy$")


@dataclass(frozen=True, kw_only=True)
class FeatureKey:
    """Everything that changes the features of one image."""

    backbone: str
    weights: str
    input_size: tuple[int, int]
    preprocess: str
    variant: str

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def folder_name(self) -> str:
        w, h = self.input_size
        return f"{self.backbone}-{w}x{h}-{self.variant}-{self.digest()}"


class FeatureStore:
    """Content-addressed, memory-mapped feature rows for one `FeatureKey`."""

    def __init__(self, root: Path, key: FeatureKey) -> None:
        self.key = key
        self.folder = Path(root) / key.folder_name()
        self._index: dict[str, tuple[Path, int]] | None = None
        self._maps: dict[Path, np.ndarray] = {}

    def __getstate__(self) -> dict:
        # Pickled to a worker process (kit.cv.ray_executor): the folder and key only; the index
        # and the memory maps are opened again there (pickling a map would copy the shards).
        return {**self.__dict__, "_index": None, "_maps": {}}

    def _tidy(self) -> None:
        """Remove what killed writers left: temporary files, and shards never committed (their
        keys file was not written) whose writer is gone."""
        remove_stale_temps(self.folder)
        host = temp_tag().split("-", 1)[0]
        for array_file in self.folder.glob("shard-*.npy"):
            match = _SHARD.match(array_file.name)
            if (match and not array_file.with_suffix(".keys").is_file()
                    and match["host"] == host and not process_alive(int(match["pid"]))):
                array_file.unlink(missing_ok=True)

    def _load_index(self) -> dict[str, tuple[Path, int]]:
        if self._index is None:
            index: dict[str, tuple[Path, int]] = {}
            if self.folder.is_dir():
                self._tidy()
                for keys_file in sorted(self.folder.glob("shard-*.keys")):
                    array_file = keys_file.with_suffix(".npy")
                    if not array_file.is_file():
                        continue
                    for row, digest in enumerate(keys_file.read_text().split()):
                        index[digest] = (array_file, row)
            self._index = index
        return self._index

    def __contains__(self, digest: str) -> bool:
        return digest in self._load_index()

    def missing(self, digests: Sequence[str]) -> list[str]:
        index = self._load_index()
        return list(dict.fromkeys(d for d in digests if d not in index))

    def append(self, digests: Sequence[str], rows: np.ndarray) -> None:
        """Commit one shard: the array first, then its keys file (the commit marker)."""
        if len(digests) != len(rows):
            raise InputError(f"{len(digests)} digests for {len(rows)} feature rows")
        if not len(digests):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "key.json"
        if not meta.exists():
            atomic_write_text(meta, json.dumps(asdict(self.key), indent=2))
        stem = f"shard-{temp_tag()}-{uuid.uuid4().hex}"
        with atomic_path(self.folder / f"{stem}.npy") as tmp:
            np.save(tmp, np.ascontiguousarray(rows, dtype=np.float32))
        atomic_write_text(self.folder / f"{stem}.keys", "\n".join(digests) + "\n")
        index = self._load_index()
        for row, digest in enumerate(digests):
            index[digest] = (self.folder / f"{stem}.npy", row)

    def _mapped(self, array_file: Path) -> np.ndarray:
        mapped = self._maps.get(array_file)
        if mapped is None:
            mapped = self._maps[array_file] = np.load(array_file, mmap_mode="r")
        return mapped

    def _locations(self, digests: Sequence[str]) -> list[tuple[Path, int]]:
        index = self._load_index()
        absent = [d for d in digests if d not in index]
        if absent:
            raise UnknownNameError(f"{len(absent)} images have no cached features in {self.folder}")
        if not len(digests):
            raise InputError("get needs at least one digest")
        return [index[d] for d in digests]

    def get(self, digests: Sequence[str]) -> np.ndarray:
        """Stack the rows of `digests` (all must be present) into one float32 array."""
        return self.rows(digests)[np.arange(len(digests))]

    def rows(self, digests: Sequence[str]) -> FeatureRows:
        """The rows of `digests` as a lazy array: indexing it reads only those rows from the
        memory-mapped shards, so a run's memory grows with its batches, not its dataset."""
        return FeatureRows(self, self._locations(digests))


class FeatureRows:
    """Feature rows read on demand from a store's shards; index it like an array of rows.

    `rows[index]` (an int array) returns those rows as a new float32 array; `len`, `shape`,
    `ndim` and `dtype` are those of the stacked array it stands for.
    """

    def __init__(self, store: FeatureStore, locations: list[tuple[Path, int]]) -> None:
        self._store = store
        self._files = list(dict.fromkeys(f for f, _ in locations))
        number = {f: i for i, f in enumerate(self._files)}
        self._file_of = np.array([number[f] for f, _ in locations], dtype=np.int64)
        self._rows = np.array([r for _, r in locations], dtype=np.int64)
        first = store._mapped(self._files[0])
        self.shape = (len(locations), *first.shape[1:])
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: np.ndarray | slice) -> np.ndarray:
        index = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        out = np.empty((len(index), *self.shape[1:]), dtype=np.float32)
        files = self._file_of[index]
        for f in np.unique(files):  # one fancy read per shard
            at = np.flatnonzero(files == f)
            out[at] = self._store._mapped(self._files[f])[self._rows[index[at]]]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        array = self[np.arange(len(self))]
        return array if dtype is None else array.astype(dtype)


__all__ = ["SHARD_ROWS", "FeatureKey", "FeatureRows", "FeatureStore"]
