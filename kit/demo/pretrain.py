"""The demo's "pretrained weights": `demo_cnn` trained on a separate generated corpus.

ImageNet weights cannot be fetched here, and a randomly initialised base gives useless features.
So, as ImageNet does for the real data, a small base learns on a corpus generated with its own
seed and its own boats, never on the images whose folds it is scored on (that would leak their
labels into the out-of-fold predictions). The weights are built once and cached under the work
folder, keyed by the corpus settings and the generator's source.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from kit.competition import Competition
from kit.core.atomic import atomic_path
from kit.core.errors import InputError
from kit.core.paths import Paths
from kit.demo import common, draw
from kit.demo.cache import demo_module
from kit.features.backbones import build_demo_cnn

CORPUS_SEED = 1_000_003  # never a demo dataset seed


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    n_images: int
    epochs: int
    size: tuple[int, int] = (64, 64)
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = CORPUS_SEED


PRETRAIN = MappingProxyType({
    "full": PretrainConfig(n_images=3000, epochs=8),
    "tiny": PretrainConfig(n_images=320, epochs=2),
})


def weights_path(competition: Competition, paths: Paths, config: PretrainConfig) -> Path:
    module = demo_module(competition)
    # The generator and the shared drawing code decide what the corpus looks like.
    sources = [inspect.getsource(m) for m in (module, draw, common)]
    key = json.dumps({"config": asdict(config),
                      "sources": [hashlib.sha1(s.encode()).hexdigest() for s in sources],
                      "builder": inspect.getsource(build_demo_cnn)}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return paths.weights() / f"demo_cnn-{competition.name}-{digest}.weights.h5"


def ensure_demo_weights(competition: Competition, paths: Paths, *, preset: str = "full",
                        log=print) -> Path:
    """Path of the demo base's weights, pretraining them first if they are not cached."""
    # A generator may set its own corpus size and epochs (`PRETRAIN` in its module).
    presets = getattr(demo_module(competition), "PRETRAIN", PRETRAIN)
    if preset not in presets:
        raise InputError(
            f"preset must be one of {', '.join(presets)}; received preset={preset!r}"
        )
    config = presets[preset]
    path = weights_path(competition, paths, config)
    if path.is_file():
        return path
    from kit.core.tf_runtime import keras, set_seed

    k = keras()
    log(f"pretraining the demo base on {config.n_images} generated images "
        f"(drawn apart from the scored images, from its own seed; cached in {path.parent})")
    corpus = demo_module(competition).corpus(config.n_images, seed=config.seed, size=config.size)
    set_seed(config.seed)
    width, height = config.size
    base = build_demo_cnn((height, width, 3))
    x = k.layers.GlobalAveragePooling2D()(base.output)
    outputs = k.layers.Dense(len(corpus.classes), activation="softmax")(x)
    model = k.Model(base.input, outputs)
    model.compile(optimizer=k.optimizers.Adam(config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(corpus.images.astype(np.float32), corpus.labels, epochs=config.epochs,
              batch_size=config.batch_size, shuffle=True, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        base.save_weights(str(tmp))
    return path
