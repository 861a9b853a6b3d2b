"""Tests for kit.probes.attention and kit.probes.boxes (Grad-CAM share inside the fish box)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.competition import load_competition
from kit.core.paths import Paths
from kit.probes.attention import attention_summary, grad_cam
from kit.probes.attention_run import run_attention
from kit.probes.boxes import Box, box_mask, mass_inside, read_boxes
from kit.probes.settings import ProbeSettings
from tests.conftest import FISH

FAST = ProbeSettings(n_resamples=300)
IMAGE = (64, 64)


def test_uniform_map_puts_the_box_area_share_inside_the_box():
    box = Box(x=16, y=8, width=32, height=16)
    share, chance = mass_inside(np.ones((4, 4)), [box], IMAGE)
    assert chance == pytest.approx(32 * 16 / 64**2)
    assert share == pytest.approx(chance, abs=1e-6)
    assert np.isnan(mass_inside(np.zeros((4, 4)), [box], IMAGE)[0])
    with pytest.raises(ValueError, match="heatmap must be non-negative"):
        mass_inside(-np.ones((2, 2)), [box], IMAGE)


def test_box_mask_clips_boxes_to_the_image():
    mask = box_mask([Box(x=-10, y=50, width=30, height=100)], IMAGE)
    assert mask.shape == (64, 64) and mask.sum() == 20 * 14


def test_read_boxes_reads_the_community_format(tmp_path: Path):
    folder = tmp_path / "annotations"
    folder.mkdir()
    records = [
        {"filename": "img_1.jpg", "class": "image",
         "annotations": [{"class": "rect", "x": 1, "y": 2, "width": 3, "height": 4},
                         {"class": "point", "x": 5, "y": 5}]},
        {"filename": "img_9.jpg", "annotations": [{"class": "rect", "x": 0, "y": 0,
                                                   "width": 1, "height": 1}]},  # no such image
    ]
    (folder / "alb_labels.json").write_text(json.dumps(records))
    boxes = read_boxes(folder, FISH, ["train/ALB/img_1.jpg", "train/BET/img_2.jpg"])
    assert boxes == {"train/ALB/img_1.jpg": (Box(x=1.0, y=2.0, width=3.0, height=4.0),)}
    (folder / "bet_labels.json").write_text("{not json")
    with pytest.raises(ValueError, match="bet_labels.json is not valid JSON"):
        read_boxes(folder, FISH, ["train/ALB/img_1.jpg"])


def _max_pool_head():
    """GlobalMaxPooling -> softmax; channel 0 votes class 0, channel 1 class 1."""
    from kit.core.tf_runtime import keras

    k = keras()
    inputs = k.Input((4, 4, 2))
    outputs = k.layers.Dense(2, activation="softmax")(k.layers.GlobalMaxPooling2D()(inputs))
    model = k.Model(inputs, outputs)
    model.layers[-1].set_weights([np.array([[3.0, -3.0], [-3.0, 3.0]], np.float32),
                                  np.zeros(2, np.float32)])
    return model


def test_grad_cam_lights_the_cells_that_carry_the_class():
    features = np.zeros((2, 4, 4, 2), np.float32)
    features[0, 1, 1, 0] = 1.0  # class 0 evidence in cell (row 1, col 1)
    features[1, 3, 2, 1] = 1.0  # class 1 evidence in cell (row 3, col 2)
    cams = grad_cam(_max_pool_head(), features, np.array([0, 1]))
    assert cams.shape == (2, 4, 4)
    assert np.unravel_index(cams[0].argmax(), (4, 4)) == (1, 1)
    assert np.unravel_index(cams[1].argmax(), (4, 4)) == (3, 2)
    inside, chance = mass_inside(cams[0], [Box(x=16, y=16, width=16, height=16)], IMAGE)
    outside, _ = mass_inside(cams[0], [Box(x=48, y=48, width=16, height=16)], IMAGE)
    assert inside > 0.4 > chance and outside < 0.05
    with pytest.raises(ValueError, match="needs spatial feature maps"):
        grad_cam(_max_pool_head(), np.zeros((2, 8)), np.array([0, 1]))


def test_summary_says_on_fish_or_not_per_class():
    rng = np.random.default_rng(0)
    box = [Box(x=0, y=0, width=32, height=32)]  # the top-left quarter
    focused = np.zeros((4, 4))
    focused[:2, :2] = 1.0
    cams = [focused + rng.uniform(0, 0.05, (4, 4)) for _ in range(10)]
    cams += [rng.uniform(0.5, 1.0, (4, 4)) for _ in range(10)]
    labels = ["ALB"] * 10 + ["SHARK"] * 10
    result = attention_summary(cams, [box] * 20, [IMAGE] * 20, labels,
                               [f"train/x/{i}.jpg" for i in range(20)], run_id="r1",
                               settings=FAST)
    per_class = {c.label: c for c in result.per_class}
    assert per_class["ALB"].on_fish and per_class["ALB"].share > 0.8
    assert not per_class["SHARK"].on_fish
    assert per_class["SHARK"].share == pytest.approx(0.25, abs=0.05)
    assert result.status == "measured" and result.to_dict()["per_class"]["ALB"]["on_fish"]


def test_attention_is_skipped_with_a_reason(tmp_path: Path):
    paths = Paths(work=tmp_path / "work", submissions=tmp_path / "subs")
    train = pd.DataFrame({"path": ["train/cat.1.jpg"], "file": ["x"], "label": ["cat"],
                          "width": [10], "height": [10]})
    cats = load_competition("dogs-vs-cats-redux")
    result = run_attention(None, train, cats, tmp_path, paths, settings=FAST)
    assert result.status == "skipped" and "no bounding-box annotations" in result.reason
    fish = load_competition("fisheries")
    result = run_attention(None, train, fish, tmp_path, paths, settings=FAST)
    assert "no finished run" in result.reason and not result.leak


def test_fcn_heads_give_their_own_class_activation_maps():
    from kit.models.heads import CAM_LAYER, HeadConfig, head_registry
    from kit.probes.attention import class_maps

    model = head_registry().get("fcn")((4, 4, 2), 2, HeadConfig(hidden=3))
    # make the cam layer read the input channels directly: channel c is class c's evidence
    conv = model.get_layer("conv1")
    kernel = np.zeros(conv.get_weights()[0].shape, np.float32)
    kernel[1, 1, 0, 0] = kernel[1, 1, 1, 1] = 1.0
    conv.set_weights([kernel])
    cam = model.get_layer(CAM_LAYER)
    cam.set_weights([np.eye(3, 2, dtype=np.float32)[None, None], np.zeros(2, np.float32)])
    features = np.zeros((2, 4, 4, 2), np.float32)
    features[0, 1, 2, 0] = 5.0
    features[1, 3, 0, 1] = 5.0
    maps = class_maps(model, features, np.array([0, 1]))
    assert maps.shape == (2, 4, 4) and (maps >= 0).all()
    assert np.unravel_index(maps[0].argmax(), (4, 4)) == (1, 2)
    assert np.unravel_index(maps[1].argmax(), (4, 4)) == (3, 0)


def test_bbox_heads_are_mapped_through_their_class_output_and_others_say_why_not():
    from kit.models.heads import HeadConfig, head_registry
    from kit.probes.attention import class_maps, unmappable_reason

    model = head_registry().get("bbox")((4, 4, 2), 2, HeadConfig(hidden=3, input_size=(64, 64)))
    maps = class_maps(model, np.ones((3, 4, 4, 2), np.float32), np.array([0, 1, 0]))
    assert maps.shape == (3, 4, 4)
    assert unmappable_reason({"head": "dense"}) is None
    assert "reads the image metadata" in unmappable_reason({"head": "metadata-merge"})
    assert "classifies crops" in unmappable_reason({"head": "crop"})
    assert "fine-tuned run" in unmappable_reason({"head": "dense", "mode": "finetune"})
