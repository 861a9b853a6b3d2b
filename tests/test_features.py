from pathlib import Path

import numpy as np
import pytest

from kit.data.images import file_digest
from kit.features.cache import FeatureKey, FeatureStore
from kit.features.extract import extract
from tests.conftest import write_jpeg


def _key(variant="plain"):
    return FeatureKey(backbone="fake", weights="w", input_size=(8, 6), preprocess="builtin",
                      variant=variant)


def _mean_forward(calls):
    def forward(batch):
        calls.append(len(batch))
        assert batch.dtype == np.uint8 and batch.shape[1:] == (6, 8, 3)
        return batch.reshape(len(batch), -1).mean(axis=1, keepdims=True).astype(np.float32)
    return forward


def _items(tmp_path: Path, n: int):
    files = [write_jpeg(tmp_path / "img" / f"{i}.jpg", seed=i) for i in range(n)]
    return [(file_digest(f), str(f)) for f in files]


def test_key_digest_changes_with_every_field():
    base = _key()
    assert base.digest() == _key().digest()
    assert base.digest() != _key("hflip").digest()
    assert base.folder_name().startswith("fake-8x6-plain-")


def test_extract_caches_by_content_and_resumes(tmp_path: Path):
    items = _items(tmp_path, 5)
    store = FeatureStore(tmp_path / "cache", _key())
    calls: list[int] = []
    report = extract(store, items, forward=_mean_forward(calls), batch_size=2)
    assert (report.computed, report.reused, report.unreadable) == (5, 0, ())
    assert calls == [2, 2, 1]
    fresh = FeatureStore(tmp_path / "cache", _key())  # a new process sees the shards on disk
    again = extract(fresh, items, forward=_mean_forward(calls), batch_size=2)
    assert (again.computed, again.reused) == (0, 5) and calls == [2, 2, 1]
    rows = fresh.get([d for d, _ in items])
    assert rows.shape == (5, 1) and rows.dtype == np.float32
    assert np.allclose(rows, store.get([d for d, _ in items]))


def test_same_content_is_computed_once(tmp_path: Path):
    a = write_jpeg(tmp_path / "a.jpg", seed=3)
    b = tmp_path / "b.jpg"
    b.write_bytes(a.read_bytes())
    items = [(file_digest(a), str(a)), (file_digest(b), str(b))]
    calls: list[int] = []
    report = extract(FeatureStore(tmp_path / "c", _key()), items, forward=_mean_forward(calls))
    assert report.computed == 1 and calls == [1]


def test_unreadable_files_are_reported_not_fatal(tmp_path: Path):
    items = _items(tmp_path, 2)
    bad = tmp_path / "img" / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    items.append((file_digest(bad), str(bad)))
    store = FeatureStore(tmp_path / "cache", _key())
    report = extract(store, items, forward=_mean_forward([]), batch_size=8)
    assert report.computed == 2
    assert [f for f, _ in report.unreadable] == [str(bad)]
    assert store.missing([d for d, _ in items]) == [items[2][0]]
    with pytest.raises(KeyError, match="1 images have no cached features"):
        store.get([d for d, _ in items])


def test_uncommitted_shard_is_ignored(tmp_path: Path):
    items = _items(tmp_path, 2)
    store = FeatureStore(tmp_path / "cache", _key())
    extract(store, items, forward=_mean_forward([]))
    for keys in store.folder.glob("shard-*.keys"):
        keys.unlink()  # a crash between the array and its commit marker
    assert len(FeatureStore(tmp_path / "cache", _key()).missing([d for d, _ in items])) == 2


def test_compiled_forward_on_a_real_backbone(tmp_path: Path):
    from kit.features.backbones import (
        build_model,
        get_backbone,
        preprocess_function,
        resolve_weights,
    )
    from kit.features.extract import compiled_forward

    backbone = get_backbone("demo_cnn")
    model = build_model(backbone, resolve_weights(backbone, "none", seed=0), (32, 32))
    forward = compiled_forward(model, preprocess_function(backbone), (32, 32))
    items = _items(tmp_path, 3)
    store = FeatureStore(tmp_path / "cache", FeatureKey(
        backbone="demo_cnn", weights="none", input_size=(32, 32), preprocess="builtin",
        variant="hflip"))
    report = extract(store, items, forward=forward, batch_size=2)
    assert report.computed == 3
    assert store.get([d for d, _ in items]).shape == (3, 2, 2, 128)


def test_identical_unreadable_files_each_get_the_real_reason(tmp_path: Path):
    items = _items(tmp_path, 1)
    for name in ("a.jpg", "b.jpg"):  # the same bytes: one digest, two files
        bad = tmp_path / "img" / name
        bad.write_bytes(b"not a jpeg")
        items.append((file_digest(bad), str(bad)))
    report = extract(FeatureStore(tmp_path / "cache", _key()), items,
                     forward=_mean_forward([]), batch_size=8)
    reasons = dict(report.unreadable)
    assert sorted(reasons) == [str(tmp_path / "img" / "a.jpg"), str(tmp_path / "img" / "b.jpg")]
    assert len(set(reasons.values())) == 1 and "no features" not in reasons[str(
        tmp_path / "img" / "a.jpg")]


def test_a_shard_a_killed_writer_never_committed_is_removed(tmp_path: Path):
    import subprocess
    import sys

    from kit.core.atomic import temp_tag

    items = _items(tmp_path, 2)
    store = FeatureStore(tmp_path / "cache", _key())
    extract(store, items, forward=_mean_forward([]))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (shard,) = store.folder.glob("shard-*.npy")
    orphan = shard.with_name(f"shard-{temp_tag().split('-')[0]}-{dead}-{'0' * 32}.npy")
    orphan.write_bytes(shard.read_bytes())  # an array whose keys file was never written
    FeatureStore(tmp_path / "cache", _key()).missing([d for d, _ in items])
    assert not orphan.exists() and shard.exists()
