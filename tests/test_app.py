"""kit.app: `kit run` as stages, each tested on tiny inputs (no TensorFlow where it needs none)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.app.calibrate import calibrate
from kit.app.features import ArrayStore, FeatureSet, usable_rows
from kit.app.folds import choose_folds
from kit.app.honesty import Assessment
from kit.app.outputs import (
    Outcome,
    build_record,
    config_hash,
    new_run_id,
    run_config,
    run_folder,
    save_predictions,
    submission_writer,
)
from kit.app.setup import DataSource, RunOptions, resolve_setup
from kit.app.table import Digests, hash_images, read_table
from kit.app.training import ensemble_data, head_inputs, strategy_name, strategy_registry
from kit.competition import load_competition
from kit.core.paths import Paths
from kit.cv.task import CVResult, FoldResult
from kit.features.backbones import ResolvedWeights
from kit.runs.layout import RunFolder
from kit.scoring.calibration import ClipChoice
from kit.scoring.calibrators import Calibration
from kit.scoring.expected import expected_score

FISH = load_competition("fisheries")
WEIGHTS = ResolvedWeights(kind="imagenet", identity="imagenet:abc", path=None, seed=0)


def _setup(tmp_path: Path, *, demo: bool = True, root: Path | None = None, **recipe):
    import dataclasses

    base = FISH.recipe_for(demo=demo)
    return resolve_setup(RunOptions(
        competition=FISH, data=DataSource(root=root or tmp_path / "data", demo=demo),
        recipe=dataclasses.replace(base, **recipe),
        paths=Paths(work=tmp_path / "work", submissions=tmp_path / "subs"),
        sample=40, seeds=(0, 1)))


@pytest.mark.parametrize("demo,expected", [(True, "3aef6b69a59cb7be"),
                                           (False, "d3adb0648723429b")])
def test_the_config_hash_is_pinned(tmp_path: Path, demo: bool, expected: str):
    """Golden values computed by kit.pipeline before the code moved into stages: a change here
    would orphan every existing run folder (nothing would resume)."""
    config = run_config(_setup(tmp_path, demo=demo), WEIGHTS)
    assert config_hash("fisheries", config, ["a", "b"], ["d1", "d2"]) == expected
    data_key = hashlib.sha1(b"a\td1\nb\td2").hexdigest()
    assert expected == hashlib.sha1(json.dumps({"competition": "fisheries", "data": data_key,
                                                **config}, sort_keys=True).encode()
                                    ).hexdigest()[:16]


def test_setup_derives_sizes_views_and_configs(tmp_path: Path):
    setup = _setup(tmp_path, head="bbox")
    assert setup.input_size == (192, 112) and setup.crop_input_size == (64, 64)
    assert setup.variants == ("plain", "hflip") and len(setup.box_views) == 6
    assert setup.head_config.input_size == (192, 112) and setup.seeds == (0, 1)
    assert strategy_name(setup) == "heads"
    assert strategy_name(_setup(tmp_path, head="crop")) == "crop"
    assert strategy_name(_setup(tmp_path, mode="finetune")) == "finetune"
    assert strategy_registry().names() == ("crop", "finetune", "heads")
    with pytest.raises(ValueError, match="--weights demo is only for --backbone demo_cnn"):
        _setup(tmp_path, backbone="vgg16")


def test_table_and_digests_of_a_layout(fish_layout: Path):
    table = read_table(FISH, fish_layout, sample=None, seed=0)
    assert len(table.train) == 16 and len(table.test) == 3
    sampled = read_table(FISH, fish_layout, sample=8, seed=0)
    assert len(sampled.train) == 8 and len(sampled.test) == 3
    (fish_layout / "train" / "ALB" / "img_00001.jpg").unlink()  # gone since the table was read
    digests = hash_images(table)
    assert digests.train[0] == f"missing:{table.train['file'][0]}"
    assert len(set(digests.train[1:])) == 15 and len(digests.test) == 3
    items = digests.items(table)
    assert items[16] == (digests.test[0], table.test["file"][0])


def _features(digests: Digests, missing: set[str]) -> FeatureSet:
    rows = {d: np.full(3, i, np.float32) for i, d in enumerate(digests.train + digests.test)}
    return FeatureSet(stores={"plain": ArrayStore(rows)},
                      present=frozenset(set(rows) - missing),
                      unreadable={"gone.jpg": "empty file"}, stats={"computed": 1})


def test_rows_without_features_are_named_and_left_out(fish_layout: Path):
    table = read_table(FISH, fish_layout, sample=None, seed=0)
    digests = hash_images(table)
    lines: list[str] = []
    rows = usable_rows(table, digests, _features(digests, {digests.train[3], digests.test[1]}),
                       FISH.classes, lines.append)
    assert len(rows.train) == 15 and rows.labels.tolist()[:3] == [0, 0, 1]
    assert rows.test_ok.tolist() == [True, False, True]
    assert rows.test_index.tolist() == [0, 2] and len(rows.test_digests) == 2
    assert rows.unreadable["train"] == [{"file": table.train["file"][3],
                                         "reason": "no features"}]
    assert lines[0].startswith("skipping unreadable training image")
    assert "predicting the class prior" in lines[1]


def test_ensemble_data_and_metadata_inputs(fish_layout: Path, tmp_path: Path):
    table = read_table(FISH, fish_layout, sample=None, seed=0)
    digests = hash_images(table)
    features = _features(digests, {digests.test[1]})
    rows = usable_rows(table, digests, features, FISH.classes, print)
    setup = _setup(tmp_path, root=fish_layout, head="metadata-merge", tta=1)
    extras = head_inputs(setup, table, rows, lambda _: None)
    assert extras.notes["metadata"].startswith("size")
    data = ensemble_data(setup, features, rows, extras)
    assert data.x_train["plain"].shape == (16, 3) and data.x_test["plain"].shape == (2, 3)
    assert data.meta_train.shape[0] == 16 and data.meta_test.shape[0] == 2


def test_folds_are_saved_and_read_back(tmp_path: Path):
    train = pd.DataFrame({"id": [f"i{k}" for k in range(12)]})
    labels = np.arange(12) % 2
    folder = RunFolder(tmp_path)
    folds = choose_folds(folder, train, labels, n_folds=3, seed=0, groups=None)
    assert sorted(np.bincount(folds)) == [4, 4, 4] and folder.folds_csv.is_file()
    assert choose_folds(folder, train, labels, n_folds=3, seed=5, groups=None).tolist() == \
        folds.tolist()  # the run folder's saved folds win
    grouped = choose_folds(RunFolder(tmp_path / "g"), train, labels, n_folds=3, seed=0,
                           groups=np.arange(12) // 2)
    assert all(grouped[k] == grouped[k + 1] for k in range(0, 12, 2))


def test_groups_come_from_the_declaration_or_a_file_and_the_fold_count_is_checked(
        fish_layout: Path, tmp_path: Path):
    import dataclasses

    from kit.app.folds import check_folds, training_groups

    table = read_table(FISH, fish_layout, sample=None, seed=0)
    setup = _setup(tmp_path, root=fish_layout)
    assert training_groups(setup, table) is None
    with pytest.raises(ValueError, match="--folds 5: class 'ALB' has 2 training images, fewer "
                                         "than the folds; use --folds 2 or fewer"):
        check_folds(setup, table, None)
    groups_file = tmp_path / "g.csv"
    pd.DataFrame({"path": table.train["path"], "group": np.arange(16) // 8}).to_csv(
        groups_file, index=False)
    with_file = dataclasses.replace(setup, options=dataclasses.replace(
        setup.options, groups_file=groups_file))
    groups = training_groups(with_file, table)
    assert groups.tolist() == ["0"] * 8 + ["1"] * 8
    with pytest.raises(ValueError, match="--folds 5: the training images fall into 2 groups"):
        check_folds(with_file, table, groups)


def _cv(oof: np.ndarray, test: np.ndarray) -> CVResult:
    fold = FoldResult(fold=0, seed=0, val_index=np.arange(len(oof)), oof=oof, test=test,
                      log_loss=0.5, best_epoch=3, seconds=1.0, resumed=False)
    return CVResult(oof=oof, test=test, folds=(fold,), cv_log_loss=0.5)


def test_calibration_gives_missing_test_rows_the_prior():
    labels = np.array([0, 0, 0, 1])
    oof = np.array([[0.9, 0.1], [0.8, 0.2], [0.99, 0.01], [0.3, 0.7]])
    cv = _cv(oof, np.array([[0.6, 0.4], [1.0, 0.0]]))
    calibrated = calibrate(labels, cv, np.array([True, False, True]), n_classes=2,
                           calibration=Calibration(kind="clip", value=0.02))
    assert calibrated.test_probs.shape == (3, 2)
    assert calibrated.test_probs[1] == pytest.approx([0.75, 0.25], abs=1e-6)
    assert calibrated.test_probs[2, 1] == pytest.approx(0.02) == calibrated.applied_clip
    assert calibrated.clip.clip == 0.0  # what choose_clip picks on these OOF rows, recorded
    plain = calibrate(labels, cv, np.array([True, False, True]), n_classes=2,
                      calibration=Calibration(kind="none"))
    assert plain.test_probs[2].tolist() == [1.0, 0.0] and plain.applied_clip == 0.0
    assert calibrated.prior_log_loss == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))


def test_submission_predictions_and_record(fish_layout: Path, tmp_path: Path):
    table = read_table(FISH, fish_layout, sample=None, seed=0)
    digests = hash_images(table)
    rows = usable_rows(table, digests, _features(digests, set()), FISH.classes, print)
    setup = _setup(tmp_path, root=fish_layout)
    config = run_config(setup, WEIGHTS)
    key, folder = run_folder(setup, table, rows, digests, config)
    assert folder.root == tmp_path / "work" / "runs" / "fisheries" / key and folder.root.is_dir()
    run_id = new_run_id(key)
    assert run_id[16:24] == key[:8] and run_id != new_run_id(key)  # unique, even in one second
    probs = np.full((3, 8), 1 / 8)
    submission = submission_writer(setup, table, probs)(tmp_path / "s.csv")
    assert pd.read_csv(submission).shape == (3, 9)
    cv = _cv(np.full((16, 8), 1 / 8), probs)
    assessment = Assessment(
        reference="single", calibration=Calibration(kind="none"), candidates={"none": 2.08},
        expected=expected_score("log_loss", rows.labels, cv.oof, clusters=None, n_private=2))
    predictions = save_predictions(folder, list(FISH.classes), rows, cv, table.test, probs)
    assert pd.read_csv(predictions["oof"]).columns[:2].tolist() == ["path", "label"]
    record = build_record(setup, table, rows, Outcome(
        weights=WEIGHTS, config=config, key=key, folder=folder, run_id=run_id,
        submission=submission, cv=cv, calibrated=calibrate(
            rows.labels, cv, rows.test_ok, n_classes=8, calibration=assessment.calibration),
        assessment=assessment,
        feature_stats={"computed": 19}, head_notes={}, bbox_iou=None, predictions=predictions,
        timings={"total": 1.0}))
    assert record.summary()["n_train"] == 16 and record.config_hash == key
    assert record.backbone == {"name": "demo_cnn", "preprocess": "builtin",
                               "weights": "imagenet:abc"}
    assert isinstance(ClipChoice, type) and record.clip == 0.0
    assert record.calibration == {"kind": "none", "value": 0.0, "asked": "auto",
                                  "fitted_on": "single OOF rows",
                                  "cross_fitted_log_loss": {"none": 2.08}, "gain_z": {}}
    assert record.summary()["expected_private"]["value"] == pytest.approx(np.log(8))
    assert record.expected_private["reference"] == "single"


def test_a_class_without_training_images_is_an_error_unless_allowed(fish_layout: Path):
    import shutil

    shutil.rmtree(fish_layout / "train" / "SHARK")
    with pytest.raises(ValueError, match=r"classes \['SHARK'\] of fisheries have no training "
                                         r"images in .*\(train/SHARK/ is empty or missing\); .*"
                                         "pass --allow-missing-classes"):
        read_table(FISH, fish_layout, sample=None, seed=0)
    (fish_layout / "train" / "SHARK").mkdir()  # an empty folder is no better
    with pytest.raises(ValueError, match="train/SHARK/ is empty or missing"):
        read_table(FISH, fish_layout, sample=None, seed=0)
    table = read_table(FISH, fish_layout, sample=None, seed=0, allow_missing_classes=True)
    assert "SHARK" not in set(table.train["label"])


def test_a_missing_class_gets_its_smoothed_prior_and_the_rest_keeps_its_proportions():
    from kit.app.calibrate import with_smoothed_prior

    labels = np.array([0, 0, 2])  # class 1 has no training image
    probs = np.array([[0.6, 0.0, 0.4], [0.2, 0.1, 0.7]])
    out = with_smoothed_prior(probs, labels, 3)
    assert out[:, 1] == pytest.approx([1 / 6, 1 / 6])  # (0 + 1) / (3 + 3)
    assert out.sum(axis=1) == pytest.approx([1, 1])
    assert out[0, 0] / out[0, 2] == pytest.approx(0.6 / 0.4)
    assert with_smoothed_prior(probs, np.array([0, 1, 2]), 3) is probs


def test_the_size_shift_is_the_own_seeds_oof_score_less_the_inner_single_rows_mean():
    from kit.app.honesty import size_shift
    from kit.scoring.metrics import log_loss

    y = np.array([0, 1, 0, 1])
    own = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    other_seed = np.full((4, 2), 0.5)
    folds = tuple(FoldResult(fold=f, seed=s, val_index=np.array([2 * f, 2 * f + 1]),
                             oof=rows[2 * f:2 * f + 2], test=np.zeros((1, 2)), log_loss=0.0,
                             best_epoch=1, seconds=0.0, resumed=False)
                  for s, rows in ((0, own), (1, other_seed)) for f in (0, 1))
    cv = CVResult(oof=(own + other_seed) / 2, test=np.zeros((1, 2)), folds=folds,
                  cv_log_loss=0.0)
    singles = np.stack([np.full((4, 2), 0.5), np.where(np.eye(2)[y] == 1, 0.6, 0.4)])
    inner = (log_loss(y, singles[0]) + log_loss(y, singles[1])) / 2
    assert size_shift("log_loss", y, singles, cv, 0) == pytest.approx(log_loss(y, own) - inner)
    assert size_shift("log_loss", y, singles, cv, 0) < 0  # more data, lower loss
