"""`python -m kit backbones`: the table of every conv base, its JSON, its errors, and the
facts behind it (floats per pooling, cache size, cached weights, throughput)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.cli.main import main
from kit.features import inventory
from kit.features.backbones import backbone_registry, get_backbone, keras_cache_candidates
from kit.features.inventory import (
    BaseFacts,
    FactsCache,
    cache_bytes,
    describe,
    floats_per_image,
    measure_throughput,
)

BASE_KEYS = {"name", "input_size", "feature_shape", "floats_per_image",
             "cache_bytes_per_10k_images", "params", "imagenet_top1", "top1_source",
             "imagenet_file", "weights_cached", "weights_path", "measured",
             "minutes_per_10k_images"}


def _fake_shapes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Skip building models: every base gets a 7x7x(100 + len(name)) map and 1000 params."""
    built: list[str] = []

    def fake(backbone, size):
        built.append(backbone.name)
        return (7, 7, 100 + len(backbone.name)), 1000

    monkeypatch.setattr(inventory, "feature_shape_and_params", fake)
    return built


def test_floats_per_pooling_and_cache_size():
    assert [floats_per_image((7, 7, 512), p) for p in ("flatten", "avg", "max")] == [
        25088, 512, 512]
    assert floats_per_image((1280,), "flatten") == floats_per_image((1280,), "avg") == 1280
    with pytest.raises(ValueError, match="pooling must be one of flatten, avg, max"):
        floats_per_image((7, 7, 512), "sum")
    assert cache_bytes((7, 7, 512)) == 25088 * 4 * 10_000  # VGG16: about 1 GB per 10k images


def test_table_of_real_bases_and_its_json(tmp_path: Path, capsys):
    out = tmp_path / "bases.json"
    assert main(["backbones", "--only", "vgg16,demo_cnn", "--work-dir", str(tmp_path / "w"),
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    header, vgg, demo = printed.splitlines()[:3]
    for column in ("input", "feature map", "floats flatten", "floats avg", "floats max",
                   "params", "top-1", "weights", "cache/10k"):
        assert column in header
    assert "img/s" not in header
    assert vgg.split()[:7] == ["vgg16", "224x224", "7x7x512", "25,088", "512", "512", "14.7M"]
    assert "71.3%" in vgg and "1.0 GB" in vgg
    assert demo.split()[:3] == ["demo_cnn", "64x64", "4x4x128"] and "n/a" in demo
    result = json.loads(out.read_text())
    assert {"keras", "date", "measured", "cache_images", "device", "bases"} <= set(result)
    assert result["measured"] is False and result["device"] is None
    first = result["bases"][0]
    assert set(first) == BASE_KEYS
    assert first["floats_per_image"] == {"flatten": 25088, "avg": 512, "max": 512}
    assert first["cache_bytes_per_10k_images"] == 1_003_520_000
    assert first["params"] == 14_714_688 and first["measured"] is None


def test_every_base_is_listed_and_computed_facts_are_kept(tmp_path: Path, monkeypatch,
                                                          capsys):
    built = _fake_shapes(monkeypatch)
    work = ["--work-dir", str(tmp_path / "w")]
    out = tmp_path / "bases.json"
    assert main(["backbones", *work, "--json", str(out)]) == 0
    names = [row["name"] for row in json.loads(out.read_text())["bases"]]
    assert names == list(backbone_registry().names())
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:len(names) + 1]] == names
    assert sorted(built) == sorted(names)
    assert (tmp_path / "w" / "backbones" / "facts.json").is_file()
    built.clear()
    assert main(["backbones", *work, "--only", "convnext_tiny"]) == 0
    assert built == []  # read back from the facts file, nothing built


def test_weights_column_follows_the_keras_cache_folder(tmp_path: Path, monkeypatch, capsys):
    _fake_shapes(monkeypatch)
    keras_home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setattr(inventory, "keras_cache_candidates",
                        lambda file: keras_cache_candidates(file)[:1])  # KERAS_HOME only
    cached = keras_home / "models" / get_backbone("convnext_tiny").imagenet_file
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights")
    out = tmp_path / "bases.json"
    assert main(["backbones", "--only", "convnext_tiny,efficientnet_v2_b0", "--work-dir",
                 str(tmp_path / "w"), "--json", str(out)]) == 0
    tiny, v2 = capsys.readouterr().out.splitlines()[1:3]
    assert "cached" in tiny.split() and "missing" in v2.split()
    rows = {row["name"]: row for row in json.loads(out.read_text())["bases"]}
    assert rows["convnext_tiny"]["weights_cached"] is True
    assert rows["convnext_tiny"]["weights_path"] == str(cached)
    assert rows["efficientnet_v2_b0"]["weights_cached"] is False
    assert rows["efficientnet_v2_b0"]["imagenet_file"] == "efficientnetv2-b0_notop.h5"


def test_measure_adds_images_per_second_on_a_restricted_set(tmp_path: Path, capsys):
    out = tmp_path / "bases.json"
    assert main(["backbones", "--measure", "--only", "demo_cnn", "--input-size", "32x32",
                 "--batch-size", "2", "--batches", "1", "--work-dir", str(tmp_path / "w"),
                 "--json", str(out)]) == 0
    captured = capsys.readouterr()
    header, row = captured.out.splitlines()[:2]
    assert "img/s" in header and "min/10k" in header
    assert row.split()[:3] == ["demo_cnn", "32x32", "2x2x128"]
    assert "random weights" in captured.out and "timing demo_cnn" in captured.err
    result = json.loads(out.read_text())
    measured = result["bases"][0]["measured"]
    assert result["measured"] is True and result["device"] == measured["device"]
    assert measured["images_per_s"] > 0 and measured["batch_size"] == 2
    assert measured["weights"].startswith("random")
    assert result["bases"][0]["minutes_per_10k_images"] > 0


@pytest.mark.parametrize(("args", "message"), [
    (["--only", "vgg17"], "--only vgg17: unknown backbone 'vgg17'. Did you mean: vgg16"),
    (["--only", ","], "--only ',': name at least one base"),
    (["--only", "vgg16", "--input-size", "16x16"],
     "--input-size 16x16: input size 16x16 is too small for vgg16"),
    (["--measure", "--batches", "0"], "--batches 0: must be an integer >= 1"),
])
def test_bad_options_are_one_error_line(args, message, capsys):
    assert main(["backbones", *args]) == 2
    assert message in capsys.readouterr().err


def test_describe_and_measure_check_their_input():
    demo = get_backbone("demo_cnn")
    with pytest.raises(ValueError, match="too small for demo_cnn"):
        describe(demo, (8, 8))
    with pytest.raises(ValueError, match="batches must be an integer >= 1; received 0"):
        measure_throughput(demo, (32, 32), batches=0)
    with pytest.raises(ValueError, match="device must be one of auto, cpu, gpu"):
        measure_throughput(demo, (32, 32), device="tpu")


def test_gpu_device_without_a_gpu_is_an_error():
    if inventory.gpu_names():
        assert inventory.resolve_device("gpu")[0] == "/GPU:0"
    else:
        with pytest.raises(ValueError, match="TensorFlow sees no GPU"):
            inventory.resolve_device("gpu")
    assert inventory.resolve_device("cpu")[0] == "/CPU:0"


def test_a_damaged_facts_file_is_recomputed(tmp_path: Path, monkeypatch):
    built = _fake_shapes(monkeypatch)
    path = tmp_path / "facts.json"
    path.write_text("{not json")
    facts = describe(get_backbone("vgg16"), cache=FactsCache(path))
    assert isinstance(facts, BaseFacts) and built == ["vgg16"]
    assert json.loads(path.read_text())  # rewritten whole
