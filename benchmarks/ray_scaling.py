"""Benchmarks `ray_extraction_scaling` and `ray_overhead`: feature extraction on Ray actors.

Usage (needs the ray extra: `pip install -e ".[ray]"`):
    python benchmarks/ray_scaling.py            # merged into benchmarks/results.json
    python benchmarks/ray_scaling.py --quick    # smoke test (benchmarks/work/results.quick.json)

Three arms extract the features of the same N synthetic JPEGs (`_common.write_jpegs`, 1280x720,
the fisheries camera size) with VGG16 at 224x224 (`weights=none`: the forward pass takes as
long with any weights), batch 16, each into a fresh `FeatureStore`:

* **local**: `kit.features.extract.extract` in this process, TensorFlow limited to one thread
  (intra- and inter-op) and one decoding thread;
* **ray x1**: `kit.features.ray_extract.ActorPool` with one actor of one CPU (one TensorFlow
  thread, one decoding thread), on a local Ray cluster started by the script (3 logical CPUs,
  so both arms' actors stay up between rounds; the arms run one at a time on the 2 cores);
* **ray x2**: the same with two such actors (`ActorPlan(actors=2, cpus_per_actor=1)`).

The Ray arms are timed as `kit run --executor ray` extracts: shards by content digest, at most
two in flight per actor, the actors reading the image files, the driver appending each shard to
the store. The actors are started, their base built and its forward pass traced before any
timing (one warm-up shard each, into a throw-away store). Rounds alternate the arms' order
(ABBA), and the script records other processes' CPU share during each arm (this process and
every process it started, Ray's included, count as its own; `foreign_cpu_share` above 0.1 marks
the figure `disturbed`).

* `ray_extraction_scaling` = images/s of ray x2 / ray x1 (target >= 1.6 on 2 cores);
* `ray_overhead` = images/s of ray x1 / local (target >= 0.9: Ray's cost over the same work).

`--quick`: 24 JPEGs of 320x240 at 64x64, batch 8, one round.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _common import (  # also puts the repository root on sys.path
    QUICK_RESULTS_FILE,
    RESULTS_FILE,
    CpuMeter,
    Measurement,
    merge_results,
    wait_until_quiet,
    work_folder,
    write_jpegs,
)

from kit.core.errors import KitError
from kit.data.images import file_digest
from kit.features.backbones import get_backbone, resolve_weights
from kit.features.cache import FeatureKey, FeatureStore

DISTURBED = 0.1
MAX_WAIT = 300.0
ARMS = ("local", "ray x1", "ray x2")


@dataclass(frozen=True, kw_only=True)
class Config:
    images: int = 128
    image_size: tuple[int, int] = (1280, 720)
    backbone: str = "vgg16"
    input_size: tuple[int, int] = (224, 224)
    batch_size: int = 16
    rounds: int = 2
    quick: bool = False


FULL = Config()
QUICK = Config(images=24, image_size=(320, 240), input_size=(64, 64), batch_size=8, rounds=1,
               quick=True)


def _one_thread() -> None:
    """TensorFlow in this process: one intra-op and one inter-op thread (the local arm)."""
    from kit.core.tf_runtime import tensorflow

    tf = tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _spec(config: Config):
    from kit.features.ray_extract import ForwardSpec

    backbone = get_backbone(config.backbone)
    return ForwardSpec(backbone=backbone, weights=resolve_weights(backbone, "none", seed=0),
                       input_size=config.input_size, threads=1)


def _store(folder: Path, config: Config, name: str) -> FeatureStore:
    spec = _spec(config)
    return FeatureStore(folder / name, FeatureKey(
        backbone=spec.backbone.name, weights=spec.weights.identity,
        input_size=config.input_size, preprocess=spec.backbone.preprocess, variant="plain"))


def _descendants() -> tuple[int, ...]:
    """Every process this one started (Ray's processes and workers): their CPU is ours."""
    import psutil

    return tuple(p.pid for p in psutil.Process().children(recursive=True))


@dataclass
class Arm:
    """One arm's extraction function and its accumulated time."""

    extract: Callable[[FeatureStore, list], Any]
    seconds: float = 0.0
    images: int = 0
    cpu_seconds: float = 0.0
    foreign_seconds: float = 0.0

    def run(self, store: FeatureStore, items: list) -> None:
        with CpuMeter(pids=_descendants()) as meter:
            start = time.perf_counter()
            self.extract(store, items)
            seconds = time.perf_counter() - start
        self.seconds += seconds
        self.images += len(items)
        self.cpu_seconds += meter.own_cpu_seconds
        self.foreign_seconds += meter.foreign_share * seconds

    def row(self) -> dict[str, Any]:
        share = self.foreign_seconds / self.seconds if self.seconds else 0.0
        return {"images_per_s": round(self.images / self.seconds, 3),
                "seconds": round(self.seconds, 3), "images": self.images,
                "own_cpu_seconds": round(self.cpu_seconds, 2),
                "foreign_cpu_share": round(share, 3), "disturbed": share > DISTURBED}


def _arms(config: Config, stack) -> dict[str, Arm]:
    """The three arms, each started and warmed up (base built, forward traced)."""
    from kit.core.ray_runtime import survey
    from kit.features.backbones import build_model, preprocess_function
    from kit.features.extract import compiled_forward, extract
    from kit.features.ray_extract import ActorPlan, actor_pool

    spec = _spec(config)
    forward = compiled_forward(build_model(spec.backbone, spec.weights, config.input_size),
                               preprocess_function(spec.backbone), config.input_size)
    arms = {"local": Arm(lambda store, items: extract(
        store, items, forward=forward, batch_size=config.batch_size, workers=1))}
    cluster = survey({})
    for name, actors in (("ray x1", 1), ("ray x2", 2)):
        pool = stack.enter_context(actor_pool(cluster, spec, read_paths=True, plan=ActorPlan(
            actors=actors, cpus_per_actor=1, gpus=False)))
        pool.pids()  # waits until every actor has built its base
        arms[name] = Arm(lambda store, items, pool=pool: pool.extract(
            store, items, batch_size=config.batch_size))
    return arms


def _warm_up(arms: dict[str, Arm], folder: Path, config: Config, items: list) -> None:
    """One shard per actor through every arm (traces each forward pass), not timed."""
    for name, arm in arms.items():
        arm.extract(_store(folder / "warmup", config, name.replace(" ", "")),
                    items[:2 * config.batch_size])


def measure(config: Config, max_wait: float = 0.0) -> dict[str, Measurement]:
    """Both figures from one set of interleaved rounds."""
    import contextlib

    import ray

    from kit.cv.ray_executor import worker_env

    _one_thread()
    waited = wait_until_quiet(max_wait=max_wait) if max_wait > 0 else 0.0
    with work_folder("ray-scaling") as folder, contextlib.ExitStack() as stack:
        images = write_jpegs(folder / "jpegs", count=config.images, size=config.image_size,
                             n_classes=8, seed=0)
        items = [(file_digest(f), str(f)) for f in images.files]
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reports over the network
        # 3 logical CPUs: the 1-actor and the 2-actor pool (one CPU per actor) stay up side by
        # side; only one arm runs at a time, so the machine's 2 cores do each arm's work
        ray.init(address="local", num_cpus=3, include_dashboard=False, logging_level="ERROR",
                 runtime_env={"env_vars": worker_env()})
        stack.callback(ray.shutdown)
        arms = _arms(config, stack)
        _warm_up(arms, folder, config, items)
        for r in range(config.rounds):
            order = ARMS if r % 2 == 0 else tuple(reversed(ARMS))
            for name in order:
                print(f"  round {r + 1}: {name}", flush=True)
                arms[name].run(_store(folder / f"r{r}", config, name.replace(" ", "")), items)
        rows = {name: arm.row() for name, arm in arms.items()}
    return _measurements(config, rows, waited)


def _measurements(config: Config, rows: dict[str, dict], waited: float
                  ) -> dict[str, Measurement]:
    speed = {name: row["images_per_s"] for name, row in rows.items()}
    scaling = speed["ray x2"] / speed["ray x1"]
    overhead = speed["ray x1"] / speed["local"]
    share = max(row["foreign_cpu_share"] for row in rows.values())
    details = {"arms": rows, "config": asdict(config), "waited_for_quiet_s": round(waited, 1),
               "contention": {"disturbed": share > DISTURBED, "foreign_cpu_share": share},
               "quick": config.quick}
    for name, value in (("ray_extraction_scaling", scaling), ("ray_overhead", overhead)):
        print(f"{name}: {value:.3f}", flush=True)
    return {
        "ray_extraction_scaling": Measurement(
            value=scaling, unit="x", target=">= 1.6", met=scaling >= 1.6,
            details={**details, "what": "images/s, 2 one-thread Ray actors / 1"}),
        "ray_overhead": Measurement(
            value=overhead, unit="ratio", target=">= 0.9", met=overhead >= 0.9,
            details={**details, "what": "images/s, 1 one-thread Ray actor / local, 1 thread"}),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"24 small JPEGs at 64x64, one round; written to {QUICK_RESULTS_FILE}")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"results file to merge into (default {RESULTS_FILE})")
    parser.add_argument("--max-wait", type=float, default=None, metavar="SECONDS",
                        help=f"first wait up to this long for a quiet CPU (default "
                             f"{MAX_WAIT:.0f}; 0 with --quick)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    max_wait = args.max_wait if args.max_wait is not None else (0.0 if args.quick else MAX_WAIT)
    try:
        from kit.core.ray_runtime import ray_module

        ray_module()
        measurements = measure(QUICK if args.quick else FULL, max_wait)
    except KitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results_file = args.results or (QUICK_RESULTS_FILE if args.quick else RESULTS_FILE)
    merge_results(results_file, {k: m.entry() for k, m in measurements.items()})
    for key, m in measurements.items():
        print(f"{key}: {m.value:.3f} {m.unit} (target {m.target}, met {m.met})")
    print(f"merged into {results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
