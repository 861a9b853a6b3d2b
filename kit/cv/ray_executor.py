"""`--executor ray`: folds as Ray tasks, and feature extraction on Ray actors.

`RayExecutor` is an `Executor` (kit.cv.executors): `map(fn, tasks)` runs `fn(task)` for every
task as one Ray task each, with one progress bar across the cluster, results in task order.

- A task whose worker process dies (killed, out of memory, node lost) is retried, up to
  `FOLD_RETRIES` times (Ray's `max_retries`); a fold retried from the start writes the same
  files (its seed comes from the task), and its folder's half-written files are removed first
  (`kit.cv.store.prepare_fold`). An exception raised by the fold itself is not retried.
- Finished folds are loaded from their folder (`done.json`) by the fit itself, as locally, so a
  re-run after a killed driver resumes.
- A fold task takes one GPU where the cluster has GPUs, else one CPU. Where the work folder is
  not the same on every node (`kit.core.ray_runtime.survey`), fold tasks run on the driver's
  node: each reads the feature cache and writes its fold folder there.
- `fuses`: a fused fit (every fold's head in one pass, `kit.cv.fused`) runs as one Ray task, so
  its numbers are exactly the local ones (`kit.cv.driver`).
- Each `FoldResult` trained on the cluster says which node trained it (`FoldResult.node`).
- `extraction_pool(spec)`: the actors of sharded feature extraction (`kit.features.ray_extract`),
  reading image paths where the data folder is shared, else bytes sent by the driver.

TensorFlow is imported inside the workers by the fits themselves; the pickled fits carry no
TensorFlow objects (a compiled head is rebuilt in the worker, `HeadFolds.__getstate__`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from kit.core.errors import InputError
from kit.core.ray_runtime import (
    RayConnection,
    Survey,
    connect,
    node_name,
    ray_get,
    ray_module,
    survey,
)
from kit.cv.task import FoldResult
from kit.features.ray_extract import ActorPlan, ActorPool, ForwardSpec, actor_pool

T = TypeVar("T")
R = TypeVar("R")

FOLD_RETRIES = 3
WORKER_ENV = ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL", "KIT_OFFLINE", "KIT_DEBUG",
              "KERAS_HOME")
"""Settings of this process every worker gets too (TensorFlow's oneDNN switch changes numbers)."""


def worker_env() -> dict[str, str]:
    """The `WORKER_ENV` variables as this process runs with them (kit's TensorFlow defaults
    included, where they are not set)."""
    from kit.core.tf_runtime import configure_environment  # sets variables; imports nothing

    env = dict(os.environ)
    configure_environment(env)
    return {name: env[name] for name in WORKER_ENV if name in env}


@dataclass(frozen=True, kw_only=True)
class Placed:
    """A task's value, the node that computed it and the task's wall seconds there."""

    value: Any
    node: str
    seconds: float


def _stamp(value: Any, node: str) -> Any:
    """Fold results trained here say so (loaded ones keep no node: they trained earlier)."""
    if isinstance(value, FoldResult):
        return value if value.resumed else replace(value, node=node)
    if isinstance(value, list) and value and all(isinstance(v, FoldResult) for v in value):
        return [_stamp(v, node) for v in value]
    return value


def run_task(fn: Callable[[Any], Any], task: Any) -> Placed:
    """What a Ray worker runs: `fn(task)`, with where and how long."""
    start = time.perf_counter()
    value = fn(task)
    node = node_name()
    return Placed(value=_stamp(value, node), node=node, seconds=time.perf_counter() - start)


class RayExecutor:
    """Runs fold tasks on a Ray cluster (see the module docstring)."""

    fuses = True  # a FusedFit runs as one task (kit.cv.driver)

    def __init__(self, connection: RayConnection, cluster: Survey, *,
                 max_retries: int = FOLD_RETRIES, plan: ActorPlan | None = None,
                 description: str = "folds") -> None:
        self.connection = connection
        self.cluster = cluster
        self.max_retries = max_retries
        self.plan = plan or ActorPlan()
        self.description = description

    @classmethod
    def connect(cls, address: str | None = None, *, shared: Mapping[str, Path] | None = None,
                num_cpus: int | None = None, log: Callable[[str], None] = print,
                **kwargs: Any) -> RayExecutor:
        """Join (or start) the cluster and survey it; `shared` names the driver folders whose
        sharing matters (`data`: actors read paths; `work`: folds run on any node).

        Raises:
            InputError: Ray is missing, the cluster cannot be reached, or a node runs another kit.
        """
        connection = connect(address, num_cpus=num_cpus, env=worker_env())
        try:
            cluster = survey(shared or {})
        except BaseException:
            connection.close()
            raise
        executor = cls(connection, cluster, **kwargs)
        try:
            executor.check_room()
        except BaseException:
            connection.close()
            raise
        log(executor.announce())
        return executor

    def check_room(self) -> None:
        """Fail now, not by waiting forever, when no node could take a fold task.

        Raises:
            InputError: the node fold tasks must run on offers Ray no CPU (nor GPU).
        """
        nodes = (self.cluster.nodes if self.folds_anywhere
                 else [self.cluster.node(self.cluster.driver_node)])
        if not any(n.gpus if self.cluster.gpus else n.cpus for n in nodes):
            where = ("no node" if self.folds_anywhere else
                     "this node (fold tasks run here: the work folder is not shared)")
            unit = "GPU" if self.cluster.gpus else "CPU"
            raise InputError(f"no fold task can run on the Ray cluster: {where} offers Ray no "
                             f"{unit}; give it some (`ray start ... --num-{unit.lower()}s N`) "
                             "or share the work folder with every node")

    @property
    def folds_anywhere(self) -> bool:
        """Fold tasks may run on any node (one node, or a work folder every node shares)."""
        return len(self.cluster.nodes) == 1 or bool(self.cluster.shared.get("work"))

    @property
    def reads_paths(self) -> bool:
        """Extraction actors read the image files themselves (else the driver sends bytes)."""
        return len(self.cluster.nodes) == 1 or bool(self.cluster.shared.get("data"))

    def announce(self) -> str:
        nodes = self.cluster.nodes
        cpus, gpus = sum(n.cpus for n in nodes), self.cluster.gpus
        return (f"ray: {len(nodes)} node{'s' * (len(nodes) != 1)} ({cpus} CPUs, {gpus} GPUs) "
                f"at {self.connection.address}; extraction actors read "
                f"{'the image files' if self.reads_paths else 'image bytes sent from here'}; "
                f"folds run on {'any node' if self.folds_anywhere else 'this node'}")

    def task_options(self) -> dict[str, Any]:
        """Ray options of one fold task."""
        options: dict[str, Any] = {"max_retries": self.max_retries, "retry_exceptions": False}
        options.update({"num_gpus": 1} if self.cluster.gpus else {"num_cpus": 1})
        if not self.folds_anywhere:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                node_id=self.cluster.driver_node, soft=False)
        return options

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        """`fn(task)` for every task, each a Ray task; results in task order."""
        ray = ray_module()
        if not tasks:
            return []
        remote = ray.remote(run_task).options(**self.task_options())
        fn_ref = ray.put(fn)  # shipped once: every task reads the same object
        refs = [remote.remote(fn_ref, task) for task in tasks]
        placed = self._gather(refs)
        return [p.value for p in placed]

    def _gather(self, refs: list) -> list[Placed]:
        ray = ray_module()
        position = {ref: i for i, ref in enumerate(refs)}
        results: dict[int, Placed] = {}
        remaining = list(refs)
        with tqdm(total=len(refs), desc=f"{self.description} (ray)", unit="task", disable=None,
                  leave=False) as bar:
            while remaining:
                done, remaining = ray.wait(remaining, num_returns=1)
                results[position[done[0]]] = ray_get(done[0])
                bar.update(1)
        return [results[i] for i in range(len(refs))]

    def extraction_pool(self, spec: ForwardSpec) -> AbstractContextManager[ActorPool]:
        """Actors holding `spec`'s base, for the duration of a `with` block."""
        return actor_pool(self.cluster, spec, read_paths=self.reads_paths, plan=self.plan)

    def describe(self) -> dict[str, Any]:
        """The cluster as the run record gives it."""
        ray = ray_module()
        return {"name": "ray", "address": self.connection.address, "ray": ray.__version__,
                "nodes": [n.to_dict() for n in self.cluster.nodes],
                "shared": dict(self.cluster.shared),
                "extraction_reads": "paths" if self.reads_paths else "bytes",
                "folds_on": "any node" if self.folds_anywhere else "the driver's node",
                "fold_task": {k: v for k, v in self.task_options().items()
                              if k != "scheduling_strategy"}}

    def close(self) -> None:
        """Leave the cluster (and stop it, when this process started it)."""
        self.connection.close()


__all__ = ["FOLD_RETRIES", "Placed", "RayExecutor", "run_task", "worker_env"]
