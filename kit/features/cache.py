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

    def get(self, digests: Sequence[str]) -> np.ndarray:
        """Stack the rows of `digests` (all must be present) into one float32 array."""
        index = self._load_index()
        absent = [d for d in digests if d not in index]
        if absent:
            raise UnknownNameError(f"{len(absent)} images have no cached features in {self.folder}")
        out: np.ndarray | None = None
        for i, digest in enumerate(digests):
            array_file, row = index[digest]
            mapped = self._maps.get(array_file)
            if mapped is None:
                mapped = self._maps[array_file] = np.load(array_file, mmap_mode="r")
            if out is None:
                out = np.empty((len(digests), *mapped.shape[1:]), dtype=np.float32)
            out[i] = mapped[row]
        if out is None:
            raise InputError("get needs at least one digest")
        return out


__all__ = ["SHARD_ROWS", "FeatureKey", "FeatureStore"]
