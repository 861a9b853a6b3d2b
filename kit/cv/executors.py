"""Executors run independent tasks (folds); local by default, Ray with `--executor ray`.

An executor has one method, `map(fn, tasks) -> list of results in task order`. `fn` and the tasks
must be picklable for an engine that ships them to other processes or machines. A cluster
executor (`kit.cv.ray_executor.RayExecutor`) also says it `fuses` (runs a fused fit as one
task, `kit.cv.driver`), offers `extraction_pool(spec)` (sharded feature extraction,
`kit.features.ray_extract`), `describe()` (for the run record) and `close()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tqdm.auto import tqdm

from kit.core.errors import InputError
from kit.core.registry import Registry

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]: ...


class LocalExecutor:
    """Runs tasks one after another in this process, with a progress bar."""

    def __init__(self, *, description: str = "folds") -> None:
        self.description = description

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        results = []
        for task in tqdm(tasks, desc=self.description, unit="fold", disable=None, leave=False):
            results.append(fn(task))
        return results


def _ray(**kwargs: Any) -> Executor:
    from kit.cv.ray_executor import RayExecutor  # Ray is imported only when asked for

    return RayExecutor.connect(**kwargs)


def executor_registry() -> Registry[Callable[..., Executor]]:
    """`local` (this process) and `ray` (`RayExecutor.connect(address=..., shared=..., log=...)`)."""
    registry: Registry[Callable[..., Executor]] = Registry("executor")
    registry.register("local", LocalExecutor)
    registry.register("ray", _ray)
    return registry


def open_executor(name: str, *, address: str | None = None,
                  shared: Mapping[str, Path] | None = None,
                  log: Callable[[str], None] = print) -> Executor | None:
    """The executor `--executor NAME` asks for: None for `local` (the fold driver's default,
    which trains fused heads in this process), else a connected cluster executor.

    Raises:
        UnknownNameError: no executor of that name (close matches named).
        InputError: `address` without a cluster executor; or the cluster's own errors (Ray not
            installed, cluster not reachable).
    """
    factory = executor_registry().get(name)
    if name == "local":
        if address is not None:
            raise InputError(f"--ray-address {address} needs --executor ray (received "
                             "--executor local)")
        return None
    return factory(address=address, shared=shared or {}, log=log)


def describe_executor(executor: Executor | None) -> dict[str, Any] | None:
    """What the run record says about a cluster executor (None: this process ran everything)."""
    describe = getattr(executor, "describe", None)
    return describe() if describe is not None else None


def close_executor(executor: Executor | None) -> None:
    """Leave the cluster of a cluster executor (nothing for the local one)."""
    close = getattr(executor, "close", None)
    if close is not None:
        close()


__all__ = ["Executor", "LocalExecutor", "close_executor", "describe_executor", "executor_registry",
           "open_executor"]
