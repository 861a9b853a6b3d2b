"""Benchmark `finetune_speed`: training images/s of fine-tuning vs. a head on cached features.

Usage:
    python benchmarks/finetune_speed.py            # merged into benchmarks/results.json
    python benchmarks/finetune_speed.py --quick    # a smoke test (benchmarks/work/results.quick.json)
    python benchmarks/run.py --only finetune_speed # the same, through the benchmark runner

The same backbone (VGG16, `weights=none`, 224x224) and the same N in-memory images (synthetic
photos from `_common.synthetic_image`, 8 classes) are trained two ways:

* **fine-tuning** (`--mode finetune`): `kit.models.finetune.build_finetune_model` with its last block
  unfrozen, all four augmentations on, the default dense head, compiled as
  `run_finetune_fold` does (TwoRateAdam, base at 0.1 x the rate);
* **head on cached features** (`--mode features`): the same dense head
  (`kit.models.heads.build_dense_head`) on the base's features of the same images, computed once
  beforehand by `kit.features.cache.compiled_forward` (not timed in this arm; its rate is reported
  as `extract_images_per_s`), compiled as `kit.models.train.HeadTrainer` does (Adam).

Both arms train with `fit` on every image, batch 32, no validation split, so the figure is the
cost of the training epochs alone. Each arm first fits one batch so Keras traces its train step
before any timing. The timed epochs alternate between the arms round by round (ABBA order),
each epoch timed by a callback from its start to its end. Value: fine-tuning images/s; details
also hold the head's images/s and `head_over_finetune` (how many times more images per second
the head trains on cached features).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from _common import (  # also puts the repository root on sys.path
    QUICK_RESULTS_FILE,
    RESULTS_FILE,
    CpuMeter,
    Measurement,
    merge_results,
    synthetic_image,
)

from kit.core.tf_runtime import keras, set_seed
from kit.features.backbones import get_backbone, preprocess_function, resolve_weights
from kit.features.extract import compiled_forward
from kit.models.finetune import FinetuneConfig, build_finetune_model, finetune_base, two_rate_adam
from kit.models.heads import HeadConfig, build_dense_head

SEED = 0


@dataclass(frozen=True, kw_only=True)
class FinetuneSpeedConfig:
    backbone: str = "vgg16"
    input_size: tuple[int, int] = (224, 224)
    images: int = 128
    n_classes: int = 8
    batch_size: int = 32
    rounds: int = 2  # each round: one fine-tuning epoch and `head_epochs` head epochs
    head_epochs: int = 10  # per round: a head epoch is short, more of them time it steadily
    learning_rate: float = 1e-3


CONFIGS = {False: FinetuneSpeedConfig(),
           True: FinetuneSpeedConfig(input_size=(64, 64), images=64, batch_size=16, rounds=2,
                                     head_epochs=5)}


def _images(config: FinetuneSpeedConfig) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    labels = np.arange(config.images) % config.n_classes
    images = np.stack([synthetic_image(rng, config.input_size, int(label), config.n_classes)
                       [:, :, ::-1] for label in labels])  # BGR -> RGB
    return images, np.eye(config.n_classes, dtype=np.float32)[labels]


def _epoch_timer() -> Any:
    k = keras()

    class EpochTimer(k.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


class Arm:
    """One way of training: its model, its inputs and the epochs timed so far."""

    def __init__(self, model: Any, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        self.model, self.x, self.y, self.batch_size = model, x, y, batch_size
        self.seconds: list[float] = []
        self.cpu_seconds = 0.0
        self._foreign = 0.0
        model.fit(x[:batch_size], y[:batch_size], epochs=1, batch_size=batch_size,
                  verbose=0)  # trace the train step (its batch dimension is free) before timing

    def train(self, epochs: int) -> None:
        timer = _epoch_timer()
        with CpuMeter() as meter:
            self.model.fit(self.x, self.y, epochs=epochs, batch_size=self.batch_size,
                           shuffle=True, callbacks=[timer], verbose=0)
        self.seconds.extend(timer.seconds)
        self.cpu_seconds += meter.own_cpu_seconds
        self._foreign += meter.foreign_share * sum(timer.seconds)

    @property
    def images_per_s(self) -> float:
        return len(self.x) * len(self.seconds) / sum(self.seconds)

    def details(self) -> dict[str, Any]:
        return {"images_per_s": round(self.images_per_s, 3), "epochs_timed": len(self.seconds),
                "epoch_seconds": [round(s, 3) for s in self.seconds],
                "own_cpu_seconds": round(self.cpu_seconds, 2),
                "foreign_cpu_share": round(self._foreign / sum(self.seconds), 3)}


def _finetune_arm(config: FinetuneSpeedConfig, images: np.ndarray, onehot: np.ndarray,
                  head: HeadConfig, finetune: FinetuneConfig) -> Arm:
    backbone = get_backbone(config.backbone)
    model = build_finetune_model(
        backbone=backbone, weights=resolve_weights(backbone, "none", seed=SEED),
        input_size=config.input_size, head_builder=build_dense_head, head_config=head,
        n_classes=config.n_classes, config=finetune, seed=SEED)
    model.compile(optimizer=two_rate_adam(learning_rate=config.learning_rate,
                                          base_variables=finetune_base(model).trainable_variables,
                                          base_lr_factor=finetune.base_lr_factor),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return Arm(model, images, onehot, config.batch_size)


def _features(config: FinetuneSpeedConfig, base: Any, images: np.ndarray) -> tuple[np.ndarray,
                                                                                     float]:
    """The base's features of `images` (as the cache stores them) and the extraction img/s."""
    backbone = get_backbone(config.backbone)
    forward = compiled_forward(base, preprocess_function(backbone), config.input_size)
    np.asarray(forward(images[: config.batch_size]))  # trace
    start = time.perf_counter()
    rows = [np.asarray(forward(images[i : i + config.batch_size]))
            for i in range(0, len(images), config.batch_size)]
    return np.concatenate(rows), len(images) / (time.perf_counter() - start)


@functools.lru_cache(maxsize=2)
def _measure(quick: bool) -> dict[str, Any]:
    """One side-by-side measurement, shared by the two figures it yields."""
    return finetune_speed(quick)


def finetune_images_per_s(quick: bool = False) -> dict[str, Any]:
    """Figure `finetune_images_per_s`: fine-tuning's training images/s."""
    return _measure(quick)


def head_train_images_per_s(quick: bool = False) -> dict[str, Any]:
    """Figure `head_train_images_per_s`: the dense head's training images/s on cached features
    of the same backbone, measured side by side with fine-tuning."""
    result = _measure(quick)
    details = result["details"]
    return {"value": details["head_train_images_per_s"], "unit": "img/s", "target": "report",
            "met": True, "details": details}


def finetune_speed(quick: bool = False) -> dict[str, Any]:
    """Training images/s of fine-tuning and of the dense head on cached features."""
    config = CONFIGS[quick]
    set_seed(SEED)
    images, onehot = _images(config)
    head, finetune = HeadConfig(), FinetuneConfig()
    start = time.perf_counter()
    fine = _finetune_arm(config, images, onehot, head, finetune)
    features, extract_rate = _features(config, finetune_base(fine.model), images)
    k = keras()
    set_seed(SEED)
    head_model = build_dense_head(features.shape[1:], config.n_classes, head)
    head_model.compile(optimizer=k.optimizers.Adam(learning_rate=config.learning_rate),
                       loss="categorical_crossentropy", metrics=["accuracy"])
    cached = Arm(head_model, features, onehot, config.batch_size)
    setup_seconds = time.perf_counter() - start
    for round_ in range(config.rounds):  # ABBA: fine, head | head, fine | ...
        steps = [(fine, 1), (cached, config.head_epochs)]
        for arm, epochs in steps if round_ % 2 == 0 else steps[::-1]:
            arm.train(epochs)
    ratio = cached.images_per_s / fine.images_per_s
    print(f"  fine-tuning {fine.images_per_s:.2f} img/s, head on cached features "
          f"{cached.images_per_s:.1f} img/s ({ratio:.0f}x); extraction {extract_rate:.2f} img/s")
    details = {
        "finetune_images_per_s": round(fine.images_per_s, 3),
        "head_train_images_per_s": round(cached.images_per_s, 3),
        "head_over_finetune": round(ratio, 2),
        "extract_images_per_s": round(extract_rate, 3),
        "finetune": fine.details(), "head": cached.details(),
        "config": {**asdict(config), "weights": "none", "head": asdict(head),
                   "finetune": asdict(finetune)},
        "excluded_seconds": {"build_trace_and_extract": round(setup_seconds, 2)},
        "quick": quick,
    }
    return {"value": fine.images_per_s, "unit": "img/s", "target": "report", "met": True,
            "details": details}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64x64 inputs, 64 images")
    args = parser.parse_args(argv)
    results_file = QUICK_RESULTS_FILE if args.quick else RESULTS_FILE
    entries = {name: Measurement(**fn(args.quick)).entry()
               for name, fn in (("finetune_images_per_s", finetune_images_per_s),
                                ("head_train_images_per_s", head_train_images_per_s))}
    merge_results(results_file, entries)
    for name, entry in entries.items():
        print(f"{name}: {entry['value']:.2f} img/s; merged into {results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
