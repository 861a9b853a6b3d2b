"""Conv features, computed once and cached on disk.

A cache entry is a folder per key (backbone, weights identity, input size, preprocessing,
augmentation variant). Inside, rows are addressed by the image file's content digest, stored in
append-only shards: `shard-*.npy` (memory-mapped on read) committed by its `shard-*.keys` file,
written last. A crash loses at most the shard being written; finished shards are reused, so
extraction resumes where it stopped. Every fold, seed, head and TTA pass reads the same rows.

Decoding runs in a thread pool ahead of the forward pass (Pillow and OpenCV release the GIL);
the forward pass is one compiled `tf.function` over a fixed batch shape.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kit.atomic import atomic_path, atomic_write_text
from kit.images import UnreadableImageError, load_image, resize
from kit.tta import apply_variant

SHARD_ROWS = 512


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

    def _load_index(self) -> dict[str, tuple[Path, int]]:
        if self._index is None:
            index: dict[str, tuple[Path, int]] = {}
            if self.folder.is_dir():
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
            raise ValueError(f"{len(digests)} digests for {len(rows)} feature rows")
        if not len(digests):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "key.json"
        if not meta.exists():
            atomic_write_text(meta, json.dumps(asdict(self.key), indent=2))
        stem = f"shard-{uuid.uuid4().hex}"
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
            raise KeyError(f"{len(absent)} images have no cached features in {self.folder}")
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
            raise ValueError("get needs at least one digest")
        return out


@dataclass(frozen=True, kw_only=True)
class ExtractionReport:
    """What one extraction pass did: rows computed, rows reused, files that could not be read."""

    computed: int
    reused: int
    unreadable: tuple[tuple[str, str], ...]  # (file, reason)
    seconds: float


def _decode(file: str, variant: str, size: tuple[int, int]) -> np.ndarray | UnreadableImageError:
    try:
        image = load_image(Path(file), draft=size)
    except UnreadableImageError as error:
        return error
    return resize(apply_variant(image, variant), size)


def _batches(items: Sequence[tuple[str, str]], batch_size: int) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(items), batch_size):
        yield list(items[start : start + batch_size])


def decoded_batches(
    items: Sequence[tuple[str, str]],
    *,
    variant: str,
    size: tuple[int, int],
    batch_size: int,
    workers: int = 2,
    prefetch: int = 2,
) -> Iterator[tuple[list[tuple[str, str]], list[np.ndarray | UnreadableImageError]]]:
    """Decode `(digest, file)` items in a thread pool, `prefetch` batches ahead of the consumer."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kit-decode") as pool:
        pending: deque[tuple[list[tuple[str, str]], list[Future]]] = deque()
        source = _batches(items, batch_size)

        def submit_next() -> None:
            batch = next(source, None)
            if batch is not None:
                pending.append((batch, [pool.submit(_decode, f, variant, size) for _, f in batch]))

        for _ in range(prefetch + 1):
            submit_next()
        while pending:
            batch, futures = pending.popleft()
            submit_next()
            yield batch, [future.result() for future in futures]


def compiled_forward(model: Any, preprocess: Callable[[Any], Any], size: tuple[int, int]) -> Any:
    """A `tf.function` mapping a uint8 batch (n, h, w, 3) to features, traced once."""
    from kit.tf_runtime import tensorflow

    tf = tensorflow()
    width, height = size

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.uint8)])
    def forward(batch):
        return model(preprocess(tf.cast(batch, tf.float32)), training=False)

    return forward


def extract(
    store: FeatureStore,
    items: Sequence[tuple[str, str]],
    *,
    forward: Callable[[np.ndarray], Any],
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    workers: int = 2,
) -> ExtractionReport:
    """Compute and cache the features of every `(digest, file)` not yet in `store`.

    Unreadable files are reported, never fatal. Shards are committed every `SHARD_ROWS` rows, so
    an interrupted extraction keeps what it finished.
    """
    import time

    start = time.perf_counter()
    todo_digests = set(store.missing([d for d, _ in items]))
    todo = [(d, f) for d, f in dict(items).items() if d in todo_digests]
    reused = len({d for d, _ in items}) - len(todo)
    unreadable: list[tuple[str, str]] = []
    buffer_keys: list[str] = []
    buffer_rows: list[np.ndarray] = []
    computed = 0
    for batch, decoded in decoded_batches(
        todo, variant=store.key.variant, size=store.key.input_size, batch_size=batch_size,
        workers=workers,
    ):
        good = [(d, img) for (d, _), img in zip(batch, decoded, strict=True)
                if not isinstance(img, UnreadableImageError)]
        for (_, file), img in zip(batch, decoded, strict=True):
            if isinstance(img, UnreadableImageError):
                unreadable.append((file, img.reason))
        if good:
            rows = np.asarray(forward(np.stack([img for _, img in good])))
            buffer_keys.extend(d for d, _ in good)
            buffer_rows.append(rows)
            computed += len(good)
        if len(buffer_keys) >= SHARD_ROWS:
            store.append(buffer_keys, np.concatenate(buffer_rows))
            buffer_keys, buffer_rows = [], []
        if progress is not None:
            progress(len(batch))
    if buffer_keys:
        store.append(buffer_keys, np.concatenate(buffer_rows))
    return ExtractionReport(computed=computed, reused=reused, unreadable=tuple(unreadable),
                            seconds=time.perf_counter() - start)
