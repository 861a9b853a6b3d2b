import time
from pathlib import Path

import numpy as np
import pytest

from kit.features.backbones import (
    MissingWeightsError,
    backbone_registry,
    build_model,
    check_input_size,
    get_backbone,
    keras_cache_candidates,
    resolve_weights,
)

REQUIRED = ("vgg16", "resnet50", "inception_v3", "xception", "mobilenet_v3_small",
            "efficientnet_b0")


def test_registry_has_the_required_backbones():
    names = backbone_registry().names()
    for name in REQUIRED:
        assert name in names
        backbone = get_backbone(name)
        assert backbone.imagenet_file and backbone.imagenet_file.endswith(".h5")


def test_unknown_backbone_lists_close_matches():
    with pytest.raises(KeyError, match="unknown backbone 'resnet5'. Did you mean: resnet50"):
        get_backbone("resnet5")


def test_missing_imagenet_weights_fail_fast_naming_the_cache_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("kit.features.backbones.keras_cache_candidates",
                        lambda name: (tmp_path / "keras" / "models" / name,))
    start = time.perf_counter()
    with pytest.raises(MissingWeightsError) as caught:
        resolve_weights(get_backbone("vgg16"), "imagenet", seed=0)
    assert time.perf_counter() - start < 5
    message = str(caught.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "keras" / "models") in message
    assert "--weights PATH" in message


def test_keras_cache_location_follows_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_cache_candidates("x.h5")[0] == tmp_path / "models" / "x.h5"


def test_cached_imagenet_file_is_used(tmp_path, monkeypatch):
    cached = tmp_path / "models" / "efficientnetb0_notop.h5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    resolved = resolve_weights(get_backbone("efficientnet_b0"), "imagenet", seed=0)
    assert resolved.kind == "imagenet" and resolved.path == cached
    assert resolved.identity.startswith("imagenet-")


def test_weights_values():
    demo = get_backbone("demo_cnn")
    assert resolve_weights(demo, "none", seed=3).identity == "none-seed3"
    with pytest.raises(MissingWeightsError, match="weights file .*nope.h5 does not exist"):
        resolve_weights(demo, "nope.h5", seed=0)
    with pytest.raises(ValueError, match="demo_cnn has no ImageNet weights"):
        resolve_weights(demo, "imagenet", seed=0)


def test_input_size_checks():
    assert check_input_size(get_backbone("vgg16"), (64, 48)) == (64, 48)
    with pytest.raises(ValueError, match=r"too small for inception_v3: each side must be >= 75"):
        check_input_size(get_backbone("inception_v3"), (64, 64))
    with pytest.raises(ValueError, match="must be \\(width, height\\) integers"):
        check_input_size(get_backbone("vgg16"), (64.0, 64))


@pytest.mark.slow
def test_weights_file_round_trip(tmp_path: Path):
    demo = get_backbone("demo_cnn")
    model = build_model(demo, resolve_weights(demo, "none", seed=0), (32, 32))
    path = tmp_path / "base.weights.h5"
    model.save_weights(str(path))
    loaded = build_model(demo, resolve_weights(demo, str(path), seed=0), (32, 32))
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert np.array_equal(a, b)


def test_wrong_weights_file_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not hdf5")
    demo = get_backbone("demo_cnn")
    with pytest.raises(ValueError, match="cannot load weights file .*bad.weights.h5"):
        build_model(demo, resolve_weights(demo, str(bad), seed=0), (32, 32))


def test_random_weights_are_repeatable_for_a_seed():
    demo = get_backbone("demo_cnn")
    first = build_model(demo, resolve_weights(demo, "none", seed=4), (32, 32)).get_weights()
    build_model(demo, resolve_weights(demo, "none", seed=9), (32, 32))  # moves the global RNG
    again = build_model(demo, resolve_weights(demo, "none", seed=4), (32, 32)).get_weights()
    other = build_model(demo, resolve_weights(demo, "none", seed=5), (32, 32)).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


# ---------------------------------------------------------------- the bases of this decade

# name: (Keras constructor, cache file of the no-top ImageNet weights, preprocessing, input)
NEW = {
    "convnext_tiny": ("ConvNeXtTiny", "convnext_tiny_notop.h5", "builtin", 224),
    "convnext_small": ("ConvNeXtSmall", "convnext_small_notop.h5", "builtin", 224),
    "convnext_base": ("ConvNeXtBase", "convnext_base_notop.h5", "builtin", 224),
    "efficientnet_v2_b0": ("EfficientNetV2B0", "efficientnetv2-b0_notop.h5", "builtin", 224),
    "efficientnet_v2_s": ("EfficientNetV2S", "efficientnetv2-s_notop.h5", "builtin", 384),
    "efficientnet_v2_m": ("EfficientNetV2M", "efficientnetv2-m_notop.h5", "builtin", 480),
    "resnet50_v2": ("ResNet50V2",
                    "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet_v2", 224),
    "densenet121": ("DenseNet121",
                    "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5", "densenet", 224),
}


@pytest.mark.parametrize("name", sorted(NEW))
def test_new_bases_are_registered_with_their_facts(name):
    keras_name, file, preprocess, side = NEW[name]
    backbone = get_backbone(name)
    assert (backbone.keras_name, backbone.imagenet_file, backbone.preprocess) == (
        keras_name, file, preprocess)
    assert backbone.input_size == (side, side) and backbone.min_size == 32
    assert 70 < backbone.imagenet_top1 < 90 and backbone.top1_source


def test_every_base_with_imagenet_weights_has_a_published_top1():
    for name in backbone_registry().names():
        backbone = get_backbone(name)
        assert (backbone.imagenet_top1 is None) == (backbone.imagenet_file is None), name


def test_keras_names_its_weights_files_as_the_registry_says():
    """The file names Keras downloads, read from its own source (no network, no TensorFlow)."""
    from importlib.util import find_spec

    source = Path(find_spec("keras").origin).parent / "src" / "applications"
    text = {f: (source / f).read_text() for f in ("convnext.py", "efficientnet_v2.py")}
    assert 'file_suffix = "_notop.h5"' in text["convnext.py"]
    assert 'name="efficientnetv2-s"' in text["efficientnet_v2.py"]
    assert 'name="efficientnetv2-m"' in text["efficientnet_v2.py"]
    assert '"densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"' in (
        source / "densenet.py").read_text()
    assert 'f"{weights_name}_weights_tf_dim_ordering_tf_kernels_notop.h5"' in (
        source / "resnet.py").read_text()
    assert 'weights_name="resnet50v2"' in (source / "resnet_v2.py").read_text()


@pytest.mark.parametrize("name", sorted(NEW))
def test_missing_weights_of_a_new_base_fail_fast_naming_the_file(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("kit.features.backbones.keras_cache_candidates",
                        lambda file: (tmp_path / "keras" / "models" / file,))
    start = time.perf_counter()
    with pytest.raises(MissingWeightsError) as caught:
        resolve_weights(get_backbone(name), "imagenet", seed=0)
    assert time.perf_counter() - start < 5
    message = str(caught.value)
    assert NEW[name][1] in message and str(tmp_path / "keras" / "models") in message
    assert "--weights PATH" in message


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NEW))
def test_new_base_builds_and_extracts_features_with_random_weights(name, tmp_path: Path):
    from kit.features.backbones import preprocess_function
    from kit.features.cache import FeatureKey, FeatureStore
    from kit.features.extract import compiled_forward, extract
    from kit.features.inventory import describe
    from tests.conftest import write_jpeg

    backbone, size = get_backbone(name), (32, 32)
    weights = resolve_weights(backbone, "none", seed=0)
    model = build_model(backbone, weights, size)
    forward = compiled_forward(model, preprocess_function(backbone), size)
    items = [(f"digest{i}", str(write_jpeg(tmp_path / f"img{i}.jpg", size=(48, 40), seed=i)))
             for i in range(3)]
    key = FeatureKey(backbone=name, weights=weights.identity, input_size=size,
                     preprocess=backbone.preprocess, variant="plain")
    store = FeatureStore(tmp_path / "features", key)
    report = extract(store, items, forward=forward, batch_size=2)
    assert report.computed == 3 and not report.unreadable
    rows = store.get([d for d, _ in items])
    assert rows.shape == (3, *describe(backbone, size).feature_shape)
    assert np.isfinite(rows).all() and rows.std() > 0


@pytest.fixture(scope="module")
def demo_work(tmp_path_factory) -> Path:
    """One work folder for the demo runs: the tiny demo data is generated once."""
    return tmp_path_factory.mktemp("work")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NEW))
def test_tiny_fisheries_demo_runs_end_to_end_with_a_new_base(name, demo_work: Path,
                                                             tmp_path: Path):
    import json

    from kit.cli.main import main
    from tests.conftest import REPO

    out = tmp_path / "run.json"
    assert main(["run", str(REPO / "competitions" / "fisheries"), "--demo", "--demo-preset",
                 "tiny", "--backbone", name, "--weights", "none", "--input-size", "32x32",
                 "--folds", "2", "--epochs", "1", "--tta", "1", "--work-dir", str(demo_work),
                 "--submissions-dir", str(tmp_path / "submissions"),
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert Path(result["submission"]).is_file() and result["n_test"] > 0
    assert np.isfinite(result["cv_log_loss"])
