"""`--executor ray` on a real local Ray cluster (no mocks of Ray): the same submission as local,
the same cached features, a killed worker or actor retried, clear errors for a missing Ray or an
unreachable cluster."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.cli.main import main
from tests.conftest import REPO, write_jpeg

FISHERIES = str(REPO / "competitions" / "fisheries")
FAST = ["--demo", "--demo-preset", "tiny", "--folds", "3", "--epochs", "4"]


def _cli(args: list[str], env: dict[str, str], *, hide_ray: bool = False
         ) -> subprocess.CompletedProcess:
    prelude = "import sys\n" + ("sys.modules['ray'] = None\n" if hide_ray else "")
    code = prelude + f"from kit.cli.main import main\nsys.exit(main({args!r}))\n"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, cwd=REPO)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "KIT_WORK_DIR": str(tmp_path / "work"),
            "KIT_SUBMISSIONS_DIR": str(tmp_path / "submissions")}


# ---------------------------------------------------------------- without a cluster


def test_executor_ray_without_ray_installed_exits_2_naming_the_extra(fish_layout: Path, env):
    done = _cli(["run", FISHERIES, "--data", str(fish_layout), "--executor", "ray"], env,
                hide_ray=True)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and 'pip install -e ".[ray]"' in errors[0]
    assert "Traceback" not in done.stderr


def test_a_ray_address_needs_the_ray_executor(fish_layout: Path, capsys):
    code = main(["run", FISHERIES, "--data", str(fish_layout), "--ray-address", "10.0.0.1:6379"])
    assert code == 2
    assert "--ray-address 10.0.0.1:6379 needs --executor ray" in capsys.readouterr().err


def test_an_unknown_executor_is_a_usage_error(fish_layout: Path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", FISHERIES, "--data", str(fish_layout), "--executor", "dask"])
    assert exit_.value.code == 2 and "invalid choice: 'dask'" in capsys.readouterr().err


def test_ray_client_and_malformed_addresses_are_refused_before_connecting():
    pytest.importorskip("ray")
    from kit.core.errors import InputError
    from kit.core.ray_runtime import _host_port, resolve_address

    with pytest.raises(InputError, match=r"ray://head:10001: Ray Client addresses"):
        resolve_address("ray://head:10001")
    with pytest.raises(InputError, match="expected HOST:PORT"):
        _host_port("head")
    assert _host_port("10.0.0.1:6379") == ("10.0.0.1", 6379) and _host_port("auto") is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_cluster_fails_within_30_s_naming_the_address(fish_layout: Path, env):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.perf_counter()
    done = _cli(["run", FISHERIES, "--data", str(fish_layout), "--executor", "ray",
                 "--ray-address", address], env)
    assert time.perf_counter() - start < 30
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot reach the Ray cluster at {address}" in errors[0]


def test_executor_options_are_not_recipe_options_and_never_change_the_config():
    from kit.cli.main import build_parser
    from kit.competition.options import OPTIONS

    assert not {"executor", "ray_address"} & {o.name for o in OPTIONS}
    args = build_parser().parse_args(["run", "fisheries", "--executor", "ray",
                                      "--ray-address", "h:1"])
    assert (args.executor, args.ray_address) == ("ray", "h:1")


def test_shards_are_cut_by_content_digest_in_whole_batches():
    from kit.features.ray_extract import shard_items, shard_size

    items = [(f"{d:02x}", f"/f{d}.jpg") for d in (9, 3, 7, 3, 1)]
    shards = shard_items(items, 2)
    assert [[d for d, _ in s] for s in shards] == [["01", "03"], ["07", "09"]]
    assert shard_size(1000, 2, 32) == 128 and shard_size(10, 4, 32) == 32
    assert shard_size(10**6, 2, 32) == 512  # at most one cache shard


def test_a_pickled_feature_store_carries_no_feature_rows(tmp_path: Path):
    from kit.features.cache import FeatureKey, FeatureStore

    key = FeatureKey(backbone="b", weights="w", input_size=(8, 8), preprocess="p",
                     variant="plain")
    store = FeatureStore(tmp_path, key)
    store.append([f"d{i}" for i in range(300)], np.ones((300, 64), np.float32))
    rows = store.rows([f"d{i}" for i in range(300)])
    rows[np.arange(3)]  # maps the shard
    copy = pickle.loads(pickle.dumps(rows))
    assert len(pickle.dumps(rows)) < 20_000  # paths and row numbers, not 75 KB of rows
    assert np.array_equal(copy[np.arange(300)], rows[np.arange(300)])


def _survey(*nodes: tuple[int, int], shared: bool = True):
    from kit.core.ray_runtime import NodeInfo, Survey

    infos = tuple(NodeInfo(node_id=f"{i:056x}", ip=f"10.0.0.{i}", host=f"h{i}", cpus=c, gpus=g,
                           kit="k", sees=("data", "work") if shared else ())
                  for i, (c, g) in enumerate(nodes))
    return Survey(nodes=infos, driver_node=f"{0:056x}", shared={"data": shared, "work": shared})


def test_actors_go_one_per_gpu_else_one_per_node_with_cpus():
    from kit.features.ray_extract import ActorPlan, _actor_options

    gpus = _actor_options(_survey((16, 2), (8, 0), (8, 1)), ActorPlan())
    assert [(int(n, 16), o["num_gpus"]) for n, o, _ in gpus] == [(0, 1), (0, 1), (2, 1)]
    cpus = _actor_options(_survey((0, 0), (8, 0), (4, 0)), ActorPlan())  # a head with no CPUs
    assert [(int(n, 16), o["num_cpus"]) for n, o, _ in cpus] == [(1, 8), (2, 4)]
    ones = _actor_options(_survey((2, 0)), ActorPlan(cpus_per_actor=1))
    assert [o["num_cpus"] for _, o, _ in ones] == [1, 1]
    assert len(_actor_options(_survey((2, 0)), ActorPlan(actors=1, cpus_per_actor=1))) == 1


def test_folds_stay_on_the_driver_node_without_a_shared_work_folder_and_need_room_there():
    pytest.importorskip("ray")
    from kit.core.errors import InputError
    from kit.core.ray_runtime import RayConnection
    from kit.cv.ray_executor import RayExecutor

    connection = RayConnection(address="10.0.0.0:6379", started=False)
    anywhere = RayExecutor(connection, _survey((2, 0), (8, 0)))
    assert anywhere.folds_anywhere and "scheduling_strategy" not in anywhere.task_options()
    pinned = RayExecutor(connection, _survey((2, 0), (8, 0), shared=False))
    assert not pinned.folds_anywhere and not pinned.reads_paths
    assert pinned.task_options()["scheduling_strategy"].node_id == f"{0:056x}"
    assert pinned.task_options()["num_cpus"] == 1
    with pytest.raises(InputError, match="this node .* offers Ray no CPU"):
        RayExecutor(connection, _survey((0, 0), (8, 0), shared=False)).check_room()
    RayExecutor(connection, _survey((0, 0), (8, 0))).check_room()  # shared: the other node
    assert RayExecutor(connection, _survey((4, 1))).task_options()["num_gpus"] == 1


# ---------------------------------------------------------------- a real local Ray cluster


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from kit.cv.ray_executor import worker_env

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reports over the network
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR",
             runtime_env={"env_vars": worker_env()})
    yield ray
    ray.shutdown()


@dataclass(frozen=True)
class KillOnce:
    """A fold fit whose first call kills its own worker process (SIGKILL, as the OOM killer or a
    lost node would), guarded by a marker file; every later call trains normally."""

    fit: object
    marker: str

    def __call__(self, *args, **kwargs):
        marker = Path(self.marker)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.fit(*args, **kwargs)


def _head_data():
    from kit.cv.data import EnsembleData

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 2, 2, 4)) * 3
    x = centers[np.arange(45) % 3] + rng.normal(size=(45, 2, 2, 4))
    x_test = centers[np.arange(9) % 3] + rng.normal(size=(9, 2, 2, 4))
    return EnsembleData(variants=("plain",), x_train={"plain": x.astype(np.float32)},
                        y_train=np.arange(45) % 3, x_test={"plain": x_test.astype(np.float32)},
                        n_classes=3)


@pytest.mark.slow
def test_a_killed_fold_worker_is_retried_and_every_fold_equals_the_local_one(
        ray_cluster, tmp_path: Path):
    from kit.cv.driver import run_folds
    from kit.cv.executors import LocalExecutor
    from kit.cv.fused import FusedHeads
    from kit.cv.heads import HeadFolds
    from kit.cv.ray_executor import RayExecutor
    from kit.models.heads import HeadConfig, head_registry
    from kit.models.train import TrainConfig
    from kit.runs.layout import RunFolder

    data, folds = _head_data(), np.random.default_rng(1).permutation(np.arange(45) % 3)
    spec = {"data": data, "build": head_registry().get("dense"),
            "head": HeadConfig(pooling="avg", hidden=8, dropout=0.1),
            "train": TrainConfig(epochs=6, batch_size=16, learning_rate=1e-2, patience=3)}
    common = {"n_classes": 3, "seeds": (0,)}
    local = run_folds(HeadFolds(**spec), folds, data.y_train, folder=RunFolder(tmp_path / "a"),
                      executor=LocalExecutor(), **common)
    executor = RayExecutor.connect(shared={"work": tmp_path})
    marker = tmp_path / "killed"
    on_ray = run_folds(KillOnce(HeadFolds(**spec), str(marker)), folds, data.y_train,
                       folder=RunFolder(tmp_path / "b"), executor=executor, **common)
    assert marker.is_file()  # a worker really died mid-fold, and its fold was retried
    assert np.abs(on_ray.oof - local.oof).max() <= 1e-6
    assert np.abs(on_ray.test - local.test).max() <= 1e-6
    assert all(f.node and not f.resumed for f in on_ray.folds)
    assert all((tmp_path / "b" / "seed0" / f"fold{k}" / "done.json").is_file() for k in range(3))

    # the fused pass: one Ray task, killed once too, and then the local pass's numbers
    fused_local = run_folds(HeadFolds(**spec), folds, data.y_train,
                            folder=RunFolder(tmp_path / "c"), fused=FusedHeads(**spec), **common)
    marker.unlink()
    fused_ray = run_folds(HeadFolds(**spec), folds, data.y_train, folder=RunFolder(tmp_path / "d"),
                          executor=executor, fused=KillOnce(FusedHeads(**spec), str(marker)),
                          **common)
    assert marker.is_file() and fused_ray.training == fused_local.training == "fused"
    assert np.abs(fused_ray.oof - fused_local.oof).max() <= 1e-6
    assert {f.node for f in fused_ray.folds} == {executor.cluster.nodes[0].ip}


def _images(folder: Path) -> list[tuple[str, str]]:
    from kit.data.images import file_digest

    files = [write_jpeg(folder / f"img_{i:03d}.jpg", size=(48 + i, 40), seed=i) for i in range(36)]
    files.append(write_jpeg(folder / "copy.jpg", size=(48, 40), seed=0))  # same content as img_000
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "broken.jpg").write_bytes(files[1].read_bytes()[:100])
    files += [folder / "empty.jpg", folder / "broken.jpg"]
    return [(file_digest(f), str(f)) for f in files]


@pytest.mark.slow
def test_sharded_extraction_with_a_killed_actor_caches_the_local_features(
        ray_cluster, tmp_path: Path):
    from kit.core.ray_runtime import survey
    from kit.features.backbones import get_backbone, resolve_weights
    from kit.features.cache import FeatureKey, FeatureStore
    from kit.features.extract import extract
    from kit.features.ray_extract import ActorPlan, ForwardSpec, actor_pool

    items = _images(tmp_path / "images")
    backbone = get_backbone("demo_cnn")
    spec = ForwardSpec(backbone=backbone, weights=resolve_weights(backbone, "none", seed=3),
                       input_size=(32, 32))
    key = FeatureKey(backbone="demo_cnn", weights=spec.weights.identity, input_size=(32, 32),
                     preprocess="builtin", variant="hflip")
    local_store, ray_store = FeatureStore(tmp_path / "a", key), FeatureStore(tmp_path / "b", key)
    local = extract(local_store, items, forward=spec.build(), batch_size=8)
    killed: list[int] = []
    with actor_pool(survey({}), spec, read_paths=False,  # bytes sent by the driver
                    plan=ActorPlan(cpus_per_actor=1)) as pool:
        pids = pool.pids()

        def kill_one(_: int) -> None:
            if not killed:  # after the first shard: one actor dies with shards in flight
                killed.append(pids[0])
                os.kill(pids[0], signal.SIGKILL)

        report = pool.extract(ray_store, items, batch_size=8, progress=kill_one)
        summary = pool.summary()
    assert killed and len(pids) == 2 and summary["actors"] == 2 and summary["read"] == "bytes"
    assert report.computed == local.computed == 36
    assert sorted(report.unreadable) == sorted(local.unreadable)
    assert {f for f, _ in report.unreadable} == {items[-2][1], items[-1][1]}
    digests = sorted({d for d, _ in items[:37]})
    assert np.abs(ray_store.get(digests) - local_store.get(digests)).max() <= 1e-5
    again = extract(FeatureStore(tmp_path / "b", key), items, forward=spec.build(), batch_size=8)
    assert again.computed == 0  # every row is in the cache the driver wrote


def _cache_rows(folder: Path) -> dict[str, np.ndarray]:
    """Every committed row of one feature cache folder, by digest (read from its shards)."""
    rows = {}
    for keys in folder.glob("shard-*.keys"):
        array = np.load(keys.with_suffix(".npy"))
        rows.update(zip(keys.read_text().split(), array, strict=True))
    return rows


def _copy_demo(source: Path, target: Path) -> None:
    """The demo data and its pretrained base, so a second work folder needs neither again."""
    for name in ("demo", "weights"):
        shutil.copytree(source / name, target / name)


@pytest.mark.slow
def test_kit_run_on_ray_gives_the_local_submission_and_resumes(
        ray_cluster, tmp_path: Path, monkeypatch, capsys):
    subs = tmp_path / "submissions"
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(subs))
    local_work, ray_work = tmp_path / "local", tmp_path / "ray"

    def run(work: Path, *extra: str) -> dict:
        monkeypatch.setenv("KIT_WORK_DIR", str(work))
        out = tmp_path / f"{work.name}-{len(list(tmp_path.glob('*.json')))}.json"
        assert main(["run", FISHERIES, *FAST, *extra, "--json", str(out)]) == 0
        summary = json.loads(out.read_text())
        return {**summary, "full": json.loads(Path(summary["record"]).read_text())}

    local = run(local_work)
    _copy_demo(local_work, ray_work)
    on_ray = run(ray_work, "--executor", "ray")
    assert "ray: 1 node (2 CPUs, 0 GPUs)" in capsys.readouterr().out
    a, b = pd.read_csv(local["submission"]), pd.read_csv(on_ray["submission"])
    assert np.abs(a.iloc[:, 1:].to_numpy() - b.iloc[:, 1:].to_numpy()).max() <= 1e-6
    oof = [pd.read_csv(r["full"]["predictions"]["oof"]).iloc[:, 2:].to_numpy()
           for r in (local, on_ray)]
    assert np.abs(oof[0] - oof[1]).max() <= 1e-6
    record = on_ray["full"]
    assert record["config_hash"] == local["full"]["config_hash"]  # --executor is not hashed
    assert record["executor"]["name"] == "ray" and record["executor"]["shared"]["work"]
    assert record["training"]["path"] == "fused"
    assert all(f["node"] == record["executor"]["nodes"][0]["ip"] for f in record["fold_scores"])
    assert record["features"]["cluster"]["images_per_node"]
    caches = sorted(f.name for f in (local_work / "features").iterdir())
    assert caches == sorted(f.name for f in (ray_work / "features").iterdir())
    for name in caches:  # the driver wrote the same cache, row for row
        rows = [_cache_rows(work / "features" / name) for work in (local_work, ray_work)]
        assert sorted(rows[0]) == sorted(rows[1])
        assert max(np.abs(rows[0][d] - rows[1][d]).max() for d in rows[0]) <= 1e-5

    again = run(ray_work, "--executor", "ray")  # as after a killed driver: resume
    assert again["full"]["features"]["computed"] == 0
    assert all(f["resumed"] and "node" not in f for f in again["full"]["fold_scores"])
    c = pd.read_csv(again["submission"])
    assert np.array_equal(c.iloc[:, 1:].to_numpy(), b.iloc[:, 1:].to_numpy())
