"""Sharded feature extraction on Ray actors: the images missing from the cache, split by content
digest, each shard run by an actor holding one loaded base; the driver writes the cache.

`ActorPool` is what `kit.app.features` uses with `--executor ray`:

- The missing images (`FeatureStore.missing`) are sorted by content digest and cut into shards
  (`shard_items`); shards go to the actors as they become free, at most `IN_FLIGHT` each, so a
  fast node takes more of them.
- An actor (`ExtractionWorker`) builds the base once (`ForwardSpec.build`: the same
  `build_model` and compiled forward pass as local extraction) and decodes each shard with the
  same `decoded_batches`, so its rows equal local extraction's. It reads the image files where
  the data folder is the driver's (`read_paths`), else the bytes the driver sends with the shard.
  A weights file the actor's node does not hold (same path, same SHA-1) comes from the driver
  through Ray's object store.
- One actor per GPU where the cluster has GPUs (`num_gpus=1`); otherwise one CPU actor per node
  with that node's CPUs, or `cpus_per_actor` each (`ActorPlan`).
- The driver appends each finished shard to the content-addressed `FeatureStore` (a killed
  driver keeps every shard it wrote), and reports unreadable files as local extraction does.
- An actor whose process dies is restarted (`MAX_RESTARTS`) and its shard retried.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kit.core.ray_runtime import Survey, node_name, ray_get, ray_module
from kit.data.images import UnreadableImageError, load_image
from kit.features.backbones import Backbone, ResolvedWeights
from kit.features.cache import SHARD_ROWS, FeatureStore
from kit.features.extract import ExtractionReport, decoded_batches

IN_FLIGHT = 2  # shards queued per actor: one running, one waiting, so an actor never idles
MAX_RESTARTS = 3  # a killed actor is restarted and its shard retried this often
SHARDS_PER_ACTOR = 4  # aim: at least this many shards per actor, for balance across nodes


@dataclass(frozen=True, kw_only=True)
class ForwardSpec:
    """What an actor builds: the base, its weights and input size (the cache key's facts), and
    its threads (None: TensorFlow's default)."""

    backbone: Backbone
    weights: ResolvedWeights
    input_size: tuple[int, int]
    threads: int | None = None

    def build(self) -> Any:
        from kit.features.backbones import build_model, preprocess_function
        from kit.features.extract import compiled_forward

        model = build_model(self.backbone, self.weights, self.input_size)
        return compiled_forward(model, preprocess_function(self.backbone), self.input_size)


@dataclass(frozen=True, kw_only=True)
class ActorPlan:
    """How many extraction actors, and their resources.

    Args:
        actors: at most this many (None: one per GPU, else as `cpus_per_actor` allows).
        cpus_per_actor: CPUs (and TensorFlow threads) of a CPU actor; None: a node's CPUs, one
            actor per node.
        gpus: use GPU actors (None: when the cluster has GPUs).
    """

    actors: int | None = None
    cpus_per_actor: int | None = None
    gpus: bool | None = None


@dataclass(frozen=True, kw_only=True)
class ShardResult:
    """An actor's answer: the rows of the readable images, the unreadable ones, where it ran."""

    digests: list[str]
    rows: np.ndarray
    unreadable: list[tuple[str, str]]  # (digest, reason)
    node: str
    seconds: float


def shard_items(items: Sequence[tuple[str, str]], shard_rows: int) -> list[list[tuple[str, str]]]:
    """`(digest, file)` items, one per digest, sorted by digest and cut into shards."""
    unique = sorted(dict(items).items())
    return [unique[i:i + shard_rows] for i in range(0, len(unique), shard_rows)]


def shard_size(n_items: int, n_actors: int, batch_size: int) -> int:
    """Rows per shard: about `SHARDS_PER_ACTOR` shards per actor, whole batches, at most
    `kit.features.cache.SHARD_ROWS` (one cache shard each)."""
    rows = -(-n_items // max(1, n_actors * SHARDS_PER_ACTOR))
    rows = -(-rows // batch_size) * batch_size
    return max(batch_size, min(rows, max(batch_size, SHARD_ROWS)))


def _file_sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_weights(weights: ResolvedWeights, blob: list | None) -> ResolvedWeights:
    """The weights on this node: the driver's file where it is here with the same SHA-1, else
    the driver's bytes (`blob`: [object ref]) written to a local file of the same name."""
    if weights.path is None or blob is None:
        return weights
    sha = weights.identity.rsplit("-", 1)[-1]
    path = Path(weights.path)
    if path.is_file() and _file_sha1(path) == sha:
        return weights
    local = Path(tempfile.gettempdir()) / "kit-weights" / sha / path.name
    if not local.is_file():
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(f"{local.name}.{os.getpid()}.part")
        part.write_bytes(ray_module().get(blob[0]))
        part.replace(local)
    return replace(weights, path=local)


class ExtractionWorker:
    """A Ray actor's state: one built base; `shard` extracts one shard's rows.

    The base is built by `ready` (called once the actor starts) or by the first shard, never by
    the constructor: a restarted actor's constructor must not need the weights' object-store
    reference, which each call carries instead (`blob`: [ref], or None where the weights have
    no file).
    """

    def __init__(self, spec: ForwardSpec, decode_workers: int) -> None:
        self.spec = spec
        self.decode_workers = decode_workers
        self.forward: Any = None

    def ready(self, blob: list | None) -> tuple[str, int]:
        """Build the base (once); where this actor runs: (node, process id)."""
        if self.forward is None:
            from kit.core.tf_runtime import tensorflow

            tf = tensorflow()
            if self.spec.threads:
                tf.config.threading.set_intra_op_parallelism_threads(self.spec.threads)
                tf.config.threading.set_inter_op_parallelism_threads(self.spec.threads)
            self.spec = replace(self.spec, weights=local_weights(self.spec.weights, blob))
            self.forward = self.spec.build()
        return node_name(), os.getpid()

    def shard(self, items: list[tuple[str, str]], payload: list[bytes] | None, *,
              variant: str, batch_size: int, blob: list | None = None) -> ShardResult:
        start = time.perf_counter()
        self.ready(blob)
        folder = None
        if payload is not None:  # the driver sent the bytes: decode them from local files
            folder = Path(tempfile.mkdtemp(prefix="kit-shard-"))
            items = [(d, _spill(folder, d, f, data)) for (d, f), data in zip(items, payload,
                                                                           strict=True)]
        try:
            digests, rows, unreadable = self._run(items, variant, batch_size)
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        return ShardResult(digests=digests, rows=rows, unreadable=unreadable, node=node_name(),
                           seconds=time.perf_counter() - start)

    def _run(self, items, variant: str, batch_size: int):
        digests: list[str] = []
        blocks: list[np.ndarray] = []
        unreadable: list[tuple[str, str]] = []
        for batch, decoded in decoded_batches(items, variant=variant, size=self.spec.input_size,
                                              batch_size=batch_size,
                                              workers=self.decode_workers):
            good = [(d, img) for (d, _), img in zip(batch, decoded, strict=True)
                    if not isinstance(img, UnreadableImageError)]
            unreadable += [(d, img.reason) for (d, _), img in zip(batch, decoded, strict=True)
                           if isinstance(img, UnreadableImageError)]
            if good:
                blocks.append(np.asarray(self.forward(np.stack([img for _, img in good]))))
                digests += [d for d, _ in good]
        rows = np.concatenate(blocks) if blocks else np.zeros((0,), np.float32)
        return digests, rows.astype(np.float32, copy=False), unreadable


def _spill(folder: Path, digest: str, file: str, data: bytes) -> str:
    """Write sent bytes to a local file named like the original (its suffix kept)."""
    path = folder / f"{digest}{Path(file).suffix}"
    path.write_bytes(data)
    return str(path)


def _unreadable_reason(file: str) -> str:
    """Why the image loader cannot read `file`, as local extraction would say it."""
    try:
        load_image(Path(file))
    except UnreadableImageError as error:
        return error.reason
    return "cannot be read"


def _payload(shard: list[tuple[str, str]]) -> tuple[list, list[bytes], list[tuple[str, str]]]:
    """The items to send with their bytes, and (digest, reason) of those this process cannot
    read (their reasons are the image loader's, as locally)."""
    send, payload, failed = [], [], []
    for digest, file in shard:
        try:
            payload.append(Path(file).read_bytes())
            send.append((digest, file))
        except OSError:
            failed.append((digest, _unreadable_reason(file)))
    return send, payload, failed


@dataclass(frozen=True, kw_only=True)
class _Slot:
    """One actor and what runs on it."""

    handle: Any
    node: str
    in_flight: list = field(default_factory=list)


def _actor_options(survey: Survey, plan: ActorPlan) -> list[tuple[str, dict[str, Any], int]]:
    """(node id, Ray options, decode threads) per actor to start."""
    gpus = plan.gpus if plan.gpus is not None else survey.gpus > 0
    out = []
    for node in survey.nodes:
        if gpus:
            per = max(1, node.cpus // max(1, node.gpus))
            out += [(node.node_id, {"num_gpus": 1, "num_cpus": min(per, 4)}, max(2, per))
                    for _ in range(node.gpus)]
            continue
        if node.cpus < 1:  # a head started with --num-cpus 0 runs no work
            continue
        cpus = plan.cpus_per_actor or node.cpus
        count = max(1, node.cpus // cpus) if plan.cpus_per_actor else 1
        out += [(node.node_id, {"num_cpus": cpus}, min(2, cpus) if cpus > 1 else 1)
                for _ in range(count)]
    return out[:plan.actors] if plan.actors else out


class ActorPool:
    """Extraction actors holding one built base; `extract` fills a FeatureStore with them."""

    def __init__(self, survey: Survey, spec: ForwardSpec, *, read_paths: bool,
                 plan: ActorPlan = ActorPlan()) -> None:
        ray = ray_module()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.read_paths = read_paths
        # the weights file travels once through the object store; kept referenced here for as
        # long as the actors may need it (a restarted actor fetches it again)
        self.blob = ([ray.put(Path(spec.weights.path).read_bytes())]
                     if spec.weights.path is not None else None)
        worker = ray.remote(ExtractionWorker)
        self.slots: list[_Slot] = []
        self.placements: list[dict[str, Any]] = []
        for node_id, options, decode in _actor_options(survey, plan):
            threads = spec.threads or (None if "num_gpus" in options else options["num_cpus"])
            handle = worker.options(
                max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
                **options).remote(replace(spec, threads=threads), decode)
            handle.ready.remote(self.blob)  # start building the base now, on every actor
            self.slots.append(_Slot(handle=handle, node=survey.node(node_id).ip))
        if not self.slots:
            raise RuntimeError("the Ray cluster has no node to run extraction actors on")
        self.n_actors = len(self.slots)

    def pids(self) -> list[int]:
        """The actors' process ids (once their base is built)."""
        ray = ray_module()
        return [pid for _, pid in ray.get([s.handle.ready.remote(self.blob)
                                           for s in self.slots])]

    def close(self) -> None:
        ray = ray_module()
        for slot in self.slots:
            ray.kill(slot.handle)
        self.slots = []

    def extract(self, store: FeatureStore, items: Sequence[tuple[str, str]], *,
                batch_size: int = 32,
                progress: Callable[[int], None] | None = None) -> ExtractionReport:
        """Compute and cache the features of every `(digest, file)` not yet in `store` (the
        contract of `kit.features.extract.extract`)."""
        start = time.perf_counter()
        todo_digests = set(store.missing([d for d, _ in items]))
        todo = [(d, f) for d, f in dict(items).items() if d in todo_digests]
        files_of: dict[str, list[str]] = {}
        for digest, file in items:
            files_of.setdefault(digest, []).append(file)
        shards = shard_items(todo, shard_size(len(todo), len(self.slots), batch_size))
        unreadable: list[tuple[str, str]] = []
        computed = 0
        for shard, result in self._results(shards, store.key.variant, batch_size):
            store.append(result.digests, result.rows)
            computed += len(result.digests)
            unreadable += [(f, reason) for d, reason in result.unreadable
                           for f in dict.fromkeys(files_of[d])]
            self.placements.append({"node": result.node, "rows": len(shard),
                                    "seconds": round(result.seconds, 3)})
            if progress is not None:
                progress(len(shard))
        return ExtractionReport(computed=computed, reused=len({d for d, _ in items}) - len(todo),
                                unreadable=tuple(unreadable),
                                seconds=time.perf_counter() - start)

    def _submit(self, slot: _Slot, shard: list[tuple[str, str]], variant: str,
                batch_size: int) -> tuple[Any, list[tuple[str, str]]]:
        send, payload, failed = (shard, None, []) if self.read_paths else _payload(shard)
        ref = slot.handle.shard.remote(send, payload, variant=variant, batch_size=batch_size,
                                       blob=self.blob)
        slot.in_flight.append(ref)
        return ref, failed

    def _results(self, shards: list, variant: str, batch_size: int
                 ) -> Iterator[tuple[list, ShardResult]]:
        """Each shard with its result, as they finish; shards go to whichever actor is free."""
        ray = ray_module()
        pending = list(reversed(shards))
        owner: dict[Any, tuple[_Slot, list, list]] = {}

        def fill() -> None:
            for slot in self.slots:
                while pending and len(slot.in_flight) < IN_FLIGHT:
                    shard = pending.pop()
                    ref, failed = self._submit(slot, shard, variant, batch_size)
                    owner[ref] = (slot, shard, failed)

        fill()
        while owner:
            done, _ = ray.wait(list(owner), num_returns=1)
            slot, shard, failed = owner.pop(done[0])
            slot.in_flight.remove(done[0])
            result = ray_get(done[0])
            fill()
            yield shard, replace(result, unreadable=result.unreadable + failed)

    def summary(self) -> dict[str, Any]:
        """Actors, shards, and images per node, for the run record."""
        per_node: dict[str, int] = {}
        for placement in self.placements:
            per_node[placement["node"]] = per_node.get(placement["node"], 0) + placement["rows"]
        return {"actors": self.n_actors, "shards": len(self.placements),
                "images_per_node": per_node, "read": "paths" if self.read_paths else "bytes"}


@contextmanager
def actor_pool(survey: Survey, spec: ForwardSpec, *, read_paths: bool,
               plan: ActorPlan = ActorPlan()) -> Iterator[ActorPool]:
    """An `ActorPool` for the duration of a `with` block; its actors are stopped after it (so
    the fold tasks that follow get their CPUs and GPUs)."""
    pool = ActorPool(survey, spec, read_paths=read_paths, plan=plan)
    try:
        yield pool
    finally:
        pool.close()


__all__ = ["ActorPlan", "ActorPool", "ExtractionWorker", "ForwardSpec", "ShardResult",
           "actor_pool", "local_weights", "shard_items", "shard_size"]
