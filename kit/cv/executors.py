"""Executors run independent tasks (folds); local by default, a distributed engine can plug in.

An executor has one method, `map(fn, tasks) -> list of results in task order`. `fn` and the tasks
must be picklable for an engine that ships them to other processes or machines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from tqdm.auto import tqdm

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


def executor_registry() -> Registry[Callable[[], Executor]]:
    registry: Registry[Callable[[], Executor]] = Registry("executor")
    registry.register("local", LocalExecutor)
    return registry
