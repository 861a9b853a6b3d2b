"""Feature extraction: images decoded in a thread pool ahead of one compiled forward pass.

Decoding runs in a thread pool ahead of the forward pass (Pillow and OpenCV release the GIL);
the forward pass is one compiled `tf.function` over a fixed batch shape. Rows are written to a
`kit.features.cache.FeatureStore`. `load_images` decodes the same way for fine-tuning, which
cannot use the cache (its base changes every step).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from kit.core.errors import InputError
from kit.data.images import UnreadableImageError, load_image, resize
from kit.data.tta import apply_variant
from kit.features.cache import SHARD_ROWS, FeatureStore


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
    from kit.core.tf_runtime import tensorflow

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
    start = time.perf_counter()
    todo_digests = set(store.missing([d for d, _ in items]))
    todo = [(d, f) for d, f in dict(items).items() if d in todo_digests]
    files_of: dict[str, list[str]] = {}
    for digest, file in items:
        files_of.setdefault(digest, []).append(file)
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
        for (digest, _), img in zip(batch, decoded, strict=True):
            if isinstance(img, UnreadableImageError):  # every file of this content, not one
                unreadable.extend((f, img.reason) for f in dict.fromkeys(files_of[digest]))
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


class LoadedImages(NamedTuple):
    """Decoded images (n, height, width, 3) uint8, and which rows could be read."""

    images: np.ndarray
    ok: np.ndarray  # bool; an unreadable file's row is False and all zeros


def load_images(items: Sequence[tuple[str, str]], *, size: tuple[int, int],
                variant: str = "plain", batch_size: int = 32) -> LoadedImages:
    """Decode `(digest, file)` items at `size` (width, height) into one uint8 array.

    Decoding is `kit.features.cache.decoded_batches` (a thread pool; the TTA `variant` applied before
    resizing, exactly as for the feature cache). Unreadable files are not fatal: their row is
    zeros and `ok` is False there. Memory: n x height x width x 3 bytes per variant (about
    570 MB for 3,777 images at 224x224).
    """
    from tqdm.auto import tqdm

    from kit.data.images import UnreadableImageError

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; received {batch_size!r}")
    width, height = size
    images = np.zeros((len(items), height, width, 3), np.uint8)
    ok = np.zeros(len(items), bool)
    row = 0
    with tqdm(total=len(items), desc=f"images {variant}", unit="img", disable=None,
              leave=False) as bar:
        for batch, decoded in decoded_batches(items, variant=variant, size=size,
                                              batch_size=batch_size):
            for image in decoded:
                if not isinstance(image, UnreadableImageError):
                    images[row] = image
                    ok[row] = True
                row += 1
            bar.update(len(batch))
    return LoadedImages(images=images, ok=ok)


__all__ = ["ExtractionReport", "LoadedImages", "compiled_forward", "decoded_batches", "extract",
           "load_images"]
