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
