"""What each conv base costs: the facts `python -m kit backbones` tabulates.

For every registered base: its default input size, the shape of its feature map and the floats
per image each pooling hands the head, its parameters, the ImageNet top-1 Keras publishes for its
weights, whether those weights are in the local Keras cache, the size of its feature cache per
10,000 images and, when measured, the images/s of kit's compiled forward pass on this machine.

Shapes and parameter counts are computed, never written down: the base is built with deferred
(never initialised) weights inside `keras.StatelessScope`, which costs a few seconds even for
ConvNeXt-Base or EfficientNetV2-M and allocates no weights. `FactsCache` keeps them in a JSON
file keyed by base, input size and Keras version, so a second call builds nothing. Throughput
is timed on random weights: the time of a forward pass does not depend on the weights' values.
TensorFlow is imported inside the functions that need it only.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from kit.competition.options import POOLINGS
from kit.core.atomic import atomic_write_text
from kit.core.errors import InputError
from kit.features.backbones import (
    Backbone,
    ResolvedWeights,
    build_model,
    check_input_size,
    keras_cache_candidates,
    preprocess_function,
    resolve_weights,
)

CACHE_IMAGES = 10_000  # the cache size is reported per this many images (one TTA view each)
FLOAT_BYTES = 4  # the feature cache stores float32 rows
DEVICES = ("auto", "cpu", "gpu")


def floats_per_image(feature_shape: tuple[int, ...], pooling: str) -> int:
    """Floats per image the head reads after `pooling` of a feature map of `feature_shape`.

    `flatten` keeps every float of the map; `avg` and `max` keep one per channel. A base whose
    features are already a vector (1-D) gives its length for every pooling.
    """
    if pooling not in POOLINGS:
        raise InputError(f"pooling must be one of {', '.join(POOLINGS)}; received {pooling!r}")
    if pooling == "flatten" or len(feature_shape) == 1:
        return math.prod(feature_shape)
    return int(feature_shape[-1])


def cache_bytes(feature_shape: tuple[int, ...], images: int = CACHE_IMAGES) -> int:
    """Bytes of the feature cache for `images` images and one TTA view.

    The cache (`kit.features.cache`) stores each image's whole feature map as float32, whatever
    the pooling: pooling happens in the head, so every pooling shares one cache.
    """
    return math.prod(feature_shape) * FLOAT_BYTES * images


def weights_in_cache(backbone: Backbone) -> Path | None:
    """The cached ImageNet weights file of `backbone`, or None (no network is used)."""
    if backbone.imagenet_file is None:
        return None
    return next((p for p in keras_cache_candidates(backbone.imagenet_file) if p.is_file()), None)


# ---------------------------------------------------------------- shapes and parameters


@dataclass(frozen=True, kw_only=True)
class BaseFacts:
    """One base at one input size: what it costs, what it is worth, whether it is ready."""

    name: str
    input_size: tuple[int, int]
    feature_shape: tuple[int, ...]
    params: int
    imagenet_top1: float | None
    top1_source: str | None
    imagenet_file: str | None
    weights_path: Path | None

    def floats(self, pooling: str) -> int:
        return floats_per_image(self.feature_shape, pooling)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`kit backbones --json`)."""
        return {
            "name": self.name, "input_size": list(self.input_size),
            "feature_shape": list(self.feature_shape),
            "floats_per_image": {p: self.floats(p) for p in POOLINGS},
            "cache_bytes_per_10k_images": cache_bytes(self.feature_shape),
            "params": self.params, "imagenet_top1": self.imagenet_top1,
            "top1_source": self.top1_source, "imagenet_file": self.imagenet_file,
            "weights_cached": self.weights_path is not None,
            "weights_path": None if self.weights_path is None else str(self.weights_path),
        }


def keras_version() -> str:
    """The installed Keras version, read without importing Keras."""
    try:
        return metadata.version("keras")
    except metadata.PackageNotFoundError:
        return "unknown"


class FactsCache:
    """Computed feature shapes and parameter counts in one JSON file (None: memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, Any] = {}
        if path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text())
            except (OSError, ValueError):
                loaded = {}  # a damaged cache is recomputed, never fatal
            self._entries = loaded if isinstance(loaded, dict) else {}

    @staticmethod
    def key(backbone: Backbone, size: tuple[int, int]) -> str:
        return (f"{backbone.name}|{backbone.keras_name}|{backbone.feature_layer}|"
                f"{size[0]}x{size[1]}|keras {keras_version()}")

    def get(self, backbone: Backbone, size: tuple[int, int]) -> tuple[tuple[int, ...], int] | None:
        entry = self._entries.get(self.key(backbone, size))
        if not isinstance(entry, dict):
            return None
        return tuple(int(v) for v in entry["feature_shape"]), int(entry["params"])

    def put(self, backbone: Backbone, size: tuple[int, int], shape: tuple[int, ...],
            params: int) -> None:
        self._entries[self.key(backbone, size)] = {"feature_shape": list(shape),
                                                   "params": params}
        if self.path is not None:
            atomic_write_text(self.path, json.dumps(self._entries, indent=1, sort_keys=True))


def feature_shape_and_params(backbone: Backbone, size: tuple[int, int]) -> tuple[tuple[int, ...],
                                                                                 int]:
    """The feature map's shape (without the batch) and the base's parameter count at `size`.

    Built with deferred weights (`keras.StatelessScope(initialize_variables=False)`): no weight
    is initialised or allocated. Keras keeps such variables in a global list until its session
    is cleared, so this clears the Keras session (models built before keep working).
    """
    from kit.core.tf_runtime import keras

    k = keras()
    weights = ResolvedWeights(kind="none", path=None, identity="none-seed0")
    with k.StatelessScope(initialize_variables=False):
        model = build_model(backbone, weights, size)
        shape = tuple(int(v) for v in model.output.shape[1:])
        params = int(sum(math.prod(w.shape) for w in model.weights))
    del model
    k.backend.clear_session()
    return shape, params


def describe(backbone: Backbone, size: tuple[int, int] | None = None, *,
             cache: FactsCache | None = None) -> BaseFacts:
    """The facts of `backbone` at `size` (default: its own input size)."""
    size = check_input_size(backbone, size or backbone.input_size)
    cache = cache or FactsCache(None)
    known = cache.get(backbone, size)
    if known is None:
        known = feature_shape_and_params(backbone, size)
        cache.put(backbone, size, *known)
    shape, params = known
    return BaseFacts(name=backbone.name, input_size=size, feature_shape=shape, params=params,
                     imagenet_top1=backbone.imagenet_top1, top1_source=backbone.top1_source,
                     imagenet_file=backbone.imagenet_file,
                     weights_path=weights_in_cache(backbone))


# ---------------------------------------------------------------- throughput


@dataclass(frozen=True, kw_only=True)
class Throughput:
    """Images/s of the compiled forward pass (random weights) over `batches` timed batches."""

    images_per_s: float
    batch_size: int
    batches: int
    warmup: int
    seconds: float
    build_seconds: float
    device: str
    weights: str = "random (seeded); a forward pass takes as long with any weights"

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def gpu_names() -> list[str]:
    """The GPUs TensorFlow sees, by name (empty on a CPU-only machine)."""
    from kit.core.tf_runtime import tensorflow

    tf = tensorflow()
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(str(details.get("device_name") or gpu.name))
    return names


def resolve_device(device: str = "auto") -> tuple[str, str]:
    """`(TensorFlow device, description)` for `auto` (a GPU when there is one), `cpu` or `gpu`.

    Raises:
        InputError: an unknown device, or `gpu` on a machine without one.
    """
    if device not in DEVICES:
        raise InputError(f"device must be one of {', '.join(DEVICES)}; received {device!r}")
    gpus = [] if device == "cpu" else gpu_names()
    if device == "gpu" and not gpus:
        raise InputError("device gpu: TensorFlow sees no GPU on this machine; use cpu or auto")
    if gpus:
        return "/GPU:0", f"GPU: {gpus[0]}"
    return "/CPU:0", f"CPU: {_cpu_model()} ({os.cpu_count()} cores)"


@contextmanager
def _on(tf_device: str) -> Iterator[None]:
    from kit.core.tf_runtime import tensorflow

    with tensorflow().device(tf_device):
        yield


def measure_throughput(backbone: Backbone, size: tuple[int, int] | None = None, *,
                       batch_size: int = 16, batches: int = 3, warmup: int = 1,
                       device: str = "auto", seed: int = 0) -> Throughput:
    """Time kit's compiled forward pass (`kit.features.extract.compiled_forward`) of `backbone`
    with random weights on random uint8 images: `warmup` untimed batches (tracing included),
    then `batches` timed ones. No decoding: the figure is the base alone."""
    from kit.features.extract import compiled_forward

    for flag, value, least in (("batch_size", batch_size, 1), ("batches", batches, 1),
                               ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InputError(f"{flag} must be an integer >= {least}; received {value!r}")
    size = check_input_size(backbone, size or backbone.input_size)
    tf_device, description = resolve_device(device)
    width, height = size
    images = np.random.default_rng(seed).integers(0, 256, (batch_size, height, width, 3),
                                                  dtype=np.uint8)
    with _on(tf_device):
        start = time.perf_counter()
        model = build_model(backbone, resolve_weights(backbone, "none", seed=seed), size)
        forward = compiled_forward(model, preprocess_function(backbone), size)
        for _ in range(warmup):
            np.asarray(forward(images))
        build_seconds = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(batches):
            np.asarray(forward(images))
        seconds = time.perf_counter() - start
    return Throughput(images_per_s=batch_size * batches / seconds, batch_size=batch_size,
                      batches=batches, warmup=warmup, seconds=seconds,
                      build_seconds=build_seconds, device=description)


def release_models() -> None:
    """Free the models built so far (between bases of a long measurement)."""
    from kit.core.tf_runtime import keras

    keras().backend.clear_session()


__all__ = ["CACHE_IMAGES", "DEVICES", "BaseFacts", "FactsCache", "Throughput", "cache_bytes",
           "describe", "feature_shape_and_params", "floats_per_image", "gpu_names",
           "keras_version", "measure_throughput", "release_models", "resolve_device",
           "weights_in_cache"]
