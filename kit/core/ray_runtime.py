"""The one place Ray is imported: joining a cluster (or starting one for the run) and surveying it.

Ray is an optional extra (`pip install -e ".[ray]"`); without it, `ray_module` raises an
`InputError` naming that command. `connect` joins the cluster at an address (`--ray-address`,
else Ray's own `RAY_ADDRESS`), or starts a local one for the run; a cluster that cannot be
reached fails within `CONNECT_TIMEOUT_S`, naming the address. `survey` runs one small task on
every node: which nodes there are (CPUs, GPUs), whether each runs the same kit as this process,
and which of the driver's folders (data, work) it sees at the same paths. The feature
extraction (`kit.features.ray_extract`) and the fold executor (`kit.cv.ray_executor`) are
built on these.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from kit.core.errors import InputError, KitError

RAY_EXTRA = 'pip install -e ".[ray]"'
RAY_ADDRESS_ENV = "RAY_ADDRESS"
AUTH_MODE_ENV = "RAY_AUTH_MODE"
USAGE_STATS_ENV = "RAY_USAGE_STATS_ENABLED"
"""Ray reports usage statistics over the internet unless told not to: kit says not to (`0`)
for the clusters it starts, unless this variable is set already."""
CONNECT_TIMEOUT_S = 25.0
"""Joining a cluster gives up after this long (the issue asks for a failure within 30 s)."""
MARKER_PREFIX = ".kit-ray-"
FINGERPRINT_FILES = 200


def ray_module() -> ModuleType:
    """Import Ray, or say how to install it."""
    try:
        import ray
    except ImportError as error:
        raise InputError(f"--executor ray needs Ray, which is not installed here: run "
                         f"{RAY_EXTRA} (the kit's ray extra), or use --executor local") from error
    return ray


def resolve_address(address: str | None) -> str | None:
    """`--ray-address`, else `$RAY_ADDRESS`, else None (a local cluster started for the run).

    Raises:
        InputError: a Ray Client address (`ray://`): kit's driver runs on a cluster node.
    """
    address = address or os.environ.get(RAY_ADDRESS_ENV) or None
    if address is not None and address.startswith("ray://"):
        raise InputError(
            f"--ray-address {address}: Ray Client addresses (ray://) are not supported; run "
            "kit on a node of the cluster (`ray start --address HEAD:6379` there) and pass "
            "--ray-address HEAD:6379")
    return address


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of `HOST:PORT`; None for `auto` and `local`."""
    if address in ("auto", "local"):
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--ray-address {address}: expected HOST:PORT of the cluster's head "
                         "(the address `ray start --head` prints, e.g. 10.0.0.1:6379), auto or "
                         "local")
    return host.strip("[]"), int(port)


def _check_reachable(address: str, timeout_s: float) -> None:
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=min(timeout_s, 10.0)):
            return
    except OSError as error:
        raise InputError(
            f"cannot reach the Ray cluster at {address} ({error.strerror or error}): start its "
            "head with `ray start --head --port PORT` on that machine, or fix --ray-address "
            f"(or ${RAY_ADDRESS_ENV})") from error


def _init_within(ray: ModuleType, kwargs: dict[str, Any], address: str,
                 timeout_s: float) -> None:
    """`ray.init(**kwargs)`, given up after `timeout_s` (a head that accepts connections but
    never answers would otherwise hang the command)."""
    outcome: dict[str, BaseException] = {}

    def init() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as error:  # noqa: BLE001 - reported to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=init, name="kit-ray-init", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise InputError(f"the Ray cluster at {address} did not answer within {timeout_s:.0f} s; "
                         "check that `ray status --address ADDRESS` works on this machine")
    if "error" in outcome:
        error = outcome["error"]
        first = (str(error).strip().splitlines() or [repr(error)])[0]
        raise InputError(f"cannot join the Ray cluster at {address}: {first}; check "
                         "--ray-address, that this machine reaches the head's port, and for a "
                         "cluster with token authentication (Ray >= 2.59) set "
                         f"{AUTH_MODE_ENV}=token here too, with its token (`ray get-auth-token`)"
                         ) from error


@dataclass(frozen=True, kw_only=True)
class RayConnection:
    """A joined Ray cluster: its address (`local` when started for this run)."""

    address: str
    started: bool  # this process started the cluster, and stops it on `close`
    reused: bool = False  # Ray was initialised already in this process (tests, notebooks)

    def close(self) -> None:
        if self.started and not self.reused:
            ray_module().shutdown()


def connect(address: str | None, *, num_cpus: int | None = None,
            env: Mapping[str, str] | None = None,
            timeout_s: float = CONNECT_TIMEOUT_S) -> RayConnection:
    """Join the cluster at `address` (see `resolve_address`), or start a local one. `env`:
    environment variables every worker of this run gets (settings that change numbers).

    Raises:
        InputError: Ray is not installed, or the cluster cannot be reached in `timeout_s`.
    """
    ray = ray_module()
    address = resolve_address(address)
    if ray.is_initialized():
        return RayConnection(address=address or "local", started=False, reused=True)
    common = {"logging_level": logging.ERROR, "runtime_env": {"env_vars": dict(env or {})}}
    if address is None:
        os.environ.setdefault(USAGE_STATS_ENV, "0")
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **common)
        return RayConnection(address="local", started=True)
    _check_reachable(address, timeout_s)
    _init_within(ray, {"address": address, **common}, address, timeout_s)
    return RayConnection(address=address, started=False)


# ---------------------------------------------------------------- the nodes and what they see


@dataclass(frozen=True, kw_only=True)
class NodeInfo:
    """One alive node: its Ray id, address, name, resources and the driver folders it sees."""

    node_id: str
    ip: str
    host: str
    cpus: int
    gpus: int
    kit: str  # digest of the kit source it imports
    sees: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ip": self.ip, "host": self.host, "cpus": self.cpus, "gpus": self.gpus,
                "sees": list(self.sees)}


@dataclass(frozen=True, kw_only=True)
class Survey:
    """The cluster's nodes, the driver's node, and which driver folders every node sees."""

    nodes: tuple[NodeInfo, ...]
    driver_node: str  # node id
    shared: Mapping[str, bool]

    @property
    def gpus(self) -> int:
        return sum(n.gpus for n in self.nodes)

    def node(self, node_id: str) -> NodeInfo:
        return next(n for n in self.nodes if n.node_id == node_id)


def kit_digest() -> str:
    """A digest of the kit package's source: nodes must run the same kit as the driver."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def folder_fingerprint(folder: Path) -> str:
    """Names and sizes of the first `FINGERPRINT_FILES` files under `folder` (sorted walk): the
    same folder, or a faithful copy, at the same path gives the same fingerprint."""
    digest = hashlib.sha1()
    count = 0
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.startswith(MARKER_PREFIX):
                continue
            path = Path(parent) / name
            try:
                size = path.stat().st_size
            except OSError:
                continue
            digest.update(f"{path.relative_to(folder)}\t{size}\n".encode())
            count += 1
            if count >= FINGERPRINT_FILES:
                return digest.hexdigest()
    return digest.hexdigest() if count else ""


def _node_facts(checks: Mapping[str, tuple[str, str, str]]) -> dict[str, Any]:
    """Runs on one node: its address and name, its kit, and which checks pass there. A check is
    (kind, path, expected): `marker` (that file holds `expected`) or `fingerprint`."""
    import ray

    sees = []
    for name, (kind, path, expected) in checks.items():
        try:
            found = (Path(path).read_text() if kind == "marker"
                     else folder_fingerprint(Path(path)))
        except OSError:
            continue
        if expected and found == expected:
            sees.append(name)
    return {"ip": ray.util.get_node_ip_address(), "host": socket.gethostname(),
            "kit": kit_digest(), "sees": sees}


def _checks(folders: Mapping[str, Path], token: str) -> tuple[dict, list[Path]]:
    """One check per folder: a marker file written there (the work folder, which workers write
    into), or a fingerprint where it cannot be written (read-only data)."""
    checks: dict[str, tuple[str, str, str]] = {}
    written: list[Path] = []
    for name, folder in folders.items():
        folder = Path(folder)
        marker = folder / f"{MARKER_PREFIX}{token}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            marker.write_text(token)
            written.append(marker)
            checks[name] = ("marker", str(marker), token)
        except OSError:
            checks[name] = ("fingerprint", str(folder), folder_fingerprint(folder))
    return checks, written


def _alive_nodes(ray: ModuleType) -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n.get("Alive")]


def _answer(ray: ModuleType, ref: Any, node: Mapping[str, Any], timeout_s: float) -> dict:
    try:
        return ray.get(ref, timeout=timeout_s)
    except ray.exceptions.RayError as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[-1]
        raise InputError(f"node {node.get('NodeManagerAddress')} of the Ray cluster cannot run "
                         f"kit's tasks ({first}); install this checkout there "
                         f"({RAY_EXTRA})") from error


def survey(folders: Mapping[str, Path], *, timeout_s: float = 120.0) -> Survey:
    """Ask every alive node what it is and which of `folders` it sees at the same path.

    Raises:
        InputError: a node runs another kit than this process (its source differs).
    """
    ray = ray_module()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    checks, written = _checks(folders, secrets.token_hex(8))
    nodes = _alive_nodes(ray)
    facts = ray.remote(_node_facts)
    try:
        refs = [facts.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            node_id=n["NodeID"], soft=False)).remote(checks) for n in nodes]
        answers = [_answer(ray, ref, node, timeout_s) for ref, node in zip(refs, nodes,
                                                                          strict=True)]
    finally:
        for marker in written:
            marker.unlink(missing_ok=True)
    infos = tuple(NodeInfo(node_id=n["NodeID"], ip=a["ip"], host=a["host"],
                           cpus=int(n["Resources"].get("CPU", 0)),
                           gpus=int(n["Resources"].get("GPU", 0)), kit=a["kit"],
                           sees=tuple(a["sees"]))
                  for n, a in zip(nodes, answers, strict=True))
    mine = kit_digest()
    for info in infos:
        if info.kit != mine:
            raise InputError(f"node {info.host} ({info.ip}) runs another kit (source digest "
                             f"{info.kit}, here {mine}): install this checkout there "
                             f"({RAY_EXTRA}) so every node computes the same numbers")
    shared = {name: all(name in n.sees for n in infos) for name in folders}
    return Survey(nodes=infos, driver_node=ray.get_runtime_context().get_node_id(),
                  shared=shared)


def ray_get(ref: Any) -> Any:
    """`ray.get(ref)`; a kit error raised inside the task is raised here as itself (one
    `error:` line, not Ray's wrapper with the worker's traceback)."""
    ray = ray_module()
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, KitError):
            raise cause from None
        raise


def node_name() -> str:
    """This worker's node, as the run record names it (its IP address)."""
    return ray_module().util.get_node_ip_address()


__all__ = ["CONNECT_TIMEOUT_S", "RAY_EXTRA", "NodeInfo", "RayConnection", "Survey", "connect",
           "folder_fingerprint", "kit_digest", "node_name", "ray_get", "ray_module",
           "resolve_address", "survey"]
