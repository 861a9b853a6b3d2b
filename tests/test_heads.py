"""Every registered head: its inputs, outputs and the errors for features it cannot take."""

import numpy as np
import pytest

from kit.models.heads import CAM_LAYER, HeadConfig, head_registry, load_head


def test_registry_lists_every_head_with_what_it_needs():
    registry = head_registry()
    assert registry.names() == ("bbox", "crop", "dense", "fcn", "metadata-merge")
    assert registry.get("metadata-merge").meta and not registry.get("dense").meta
    assert registry.get("bbox").boxes and registry.get("crop").boxes
    assert registry.get("fcn").input_size == "fcn"
    with pytest.raises(KeyError, match="unknown head 'bbx'. Did you mean: bbox"):
        registry.get("bbx")
    with pytest.raises(ValueError, match="the crop head is composed by the pipeline"):
        registry.get("crop")((2, 2, 4), 3, HeadConfig())


def test_metadata_merge_takes_features_and_meta():
    spec = head_registry().get("metadata-merge")
    model = spec((2, 2, 4), 3, HeadConfig(hidden=8, pooling="max", meta_dim=5))
    out = model.predict_on_batch({"features": np.ones((2, 2, 2, 4), np.float32),
                                  "meta": np.eye(5, dtype=np.float32)[:2]})
    assert out.shape == (2, 3) and np.allclose(out.sum(axis=1), 1, atol=1e-5)
    assert model.get_layer("merge") is not None
    with pytest.raises(ValueError, match="metadata-merge head needs meta_dim >= 1"):
        spec((2, 2, 4), 3, HeadConfig(hidden=8))


def test_bbox_head_has_probs_and_box_outputs_and_needs_a_map():
    spec = head_registry().get("bbox")
    model = spec((3, 3, 4), 3, HeadConfig(hidden=8, pooling="max", input_size=(48, 48)))
    out = model.predict_on_batch(np.ones((2, 3, 3, 4), np.float32))
    assert set(out) == {"probs", "box"}
    assert out["probs"].shape == (2, 3) and out["box"].shape == (2, 4)
    # each cell's centre (8, 24 and 40 px) moves at most one cell (16 px); the box centre is
    # their weighted mean
    centre = out["box"][:, :2] + out["box"][:, 2:] / 2
    assert ((centre >= -8) & (centre <= 56)).all()
    # with zero scores and zero regressions every cell weighs the same: the box sits at the
    # middle of the input with sides exp(-2) of the input's
    for name in ("box_heat", "box_regress"):
        layer = model.get_layer(name)
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    box = model.predict_on_batch(np.ones((1, 3, 3, 4), np.float32))["box"][0]
    side = 48 * np.exp(-2)
    np.testing.assert_allclose(box, [24 - side / 2, 24 - side / 2, side, side], rtol=1e-5)
    with pytest.raises(ValueError, match="bbox head needs spatial"):
        spec((16,), 3, HeadConfig(hidden=8, input_size=(48, 48)))
    with pytest.raises(ValueError, match="bbox head needs HeadConfig.input_size"):
        spec((3, 3, 4), 3, HeadConfig(hidden=8))


def test_fcn_head_is_convolutional_with_a_class_map_layer():
    spec = head_registry().get("fcn")
    model = spec((5, 8, 4), 3, HeadConfig(hidden=8))
    assert model.get_layer(CAM_LAYER).output.shape[1:] == (5, 8, 3)
    assert not any(layer.name.startswith("dense") for layer in model.layers)
    out = model.predict_on_batch(np.ones((2, 5, 8, 4), np.float32))
    assert out.shape == (2, 3) and np.allclose(out.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="fcn head needs spatial"):
        spec((16,), 3, HeadConfig(hidden=8))


def test_load_head_rebuilds_a_saved_bbox_head(tmp_path):
    spec = head_registry().get("bbox")
    config = HeadConfig(hidden=8, input_size=(48, 48))
    model = spec((3, 3, 4), 3, config)
    model.save_weights(str(tmp_path / "model.weights.h5"))
    again = load_head(tmp_path / "model.weights.h5", head="bbox", feature_shape=(3, 3, 4),
                      n_classes=3, config=config)
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype(np.float32)
    assert np.allclose(model.predict_on_batch(x)["box"], again.predict_on_batch(x)["box"])
