"""Heads, training and the K-fold ensemble on tiny synthetic features."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kit.cv.data import EnsembleData
from kit.cv.driver import run_folds
from kit.cv.executors import LocalExecutor, executor_registry
from kit.cv.heads import HeadFolds
from kit.models.heads import HeadConfig, build_dense_head, head_registry
from kit.models.train import TrainConfig, inner_split
from kit.scoring.metrics import log_loss


def _data(n=60, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = rng.normal(size=(3, 2, 2, 4)) * 3
    x = centers[y] + rng.normal(size=(n, 2, 2, 4))
    x_test = centers[np.arange(n_test) % 3] + rng.normal(size=(n_test, 2, 2, 4))
    def jitter(a):  # a second TTA view: the same features, slightly perturbed
        return (a + 0.1 * rng.normal(size=a.shape)).astype(np.float32)

    return EnsembleData(variants=("plain", "hflip"),
                        x_train={"plain": x.astype(np.float32), "hflip": jitter(x)},
                        y_train=y, x_test={"plain": x_test.astype(np.float32),
                                           "hflip": jitter(x_test)},
                        n_classes=3)


CONFIG = TrainConfig(epochs=15, batch_size=16, learning_rate=1e-2, patience=5)


def cross_validate(data, folds, *, seeds, run_dir, build, head, train, executor=None,
                   pseudo_label=None):
    """Heads on features through the one fold driver, as `kit run` trains them."""
    from kit.runs.layout import RunFolder

    return run_folds(HeadFolds(data=data, build=build, head=head, train=train), folds,
                     data.y_train, n_classes=data.n_classes, seeds=seeds,
                     folder=RunFolder(run_dir), executor=executor, pseudo_label=pseudo_label)


def test_head_config_validation():
    with pytest.raises(ValueError, match="pooling must be one of flatten, avg, max; received "
                                         "pooling='mean'"):
        HeadConfig(pooling="mean")
    with pytest.raises(ValueError, match="dropout must be a float in"):
        HeadConfig(dropout=1.0)
    with pytest.raises(ValueError, match="epochs must be a positive integer; received epochs=0"):
        TrainConfig(epochs=0)
    with pytest.raises(KeyError, match="unknown head 'dense2'"):
        head_registry().get("dense2")


@pytest.mark.parametrize("pooling,layer", [("flatten", "flatten"), ("avg", "avg_pool"),
                                           ("max", "max_pool")])
def test_every_pooling_builds_its_own_layer(pooling, layer):
    model = build_dense_head((2, 2, 4), 3, HeadConfig(pooling=pooling, hidden=8))
    assert model.get_layer(layer) is not None
    assert model.output_shape == (None, 3)


def test_inner_split_is_stratified_and_disjoint():
    y = np.array([0] * 10 + [1] * 10)
    fit, stop = inner_split(y, seed=0)
    assert not set(fit) & set(stop) and len(fit) + len(stop) == 20
    assert set(y[stop]) == {0, 1}


@pytest.mark.slow
def test_cross_validate_learns_and_resumes(tmp_path: Path):
    data = _data()
    folds = np.random.default_rng(1).permutation(np.arange(60) % 3)
    kwargs = dict(seeds=(0,), run_dir=tmp_path, build=build_dense_head,
                  head=HeadConfig(hidden=16, dropout=0.1), train=CONFIG)
    result = cross_validate(data, folds, executor=LocalExecutor(), **kwargs)
    prior = log_loss(data.y_train, np.full((60, 3), 1 / 3))
    assert result.cv_log_loss < 0.5 * prior
    assert result.oof.shape == (60, 3) and result.test.shape == (10, 3)
    assert np.allclose(result.oof.sum(axis=1), 1) and len(result.folds) == 3
    for k in range(3):
        assert (tmp_path / "seed0" / f"fold{k}" / "done.json").is_file()
        assert (tmp_path / "seed0" / f"fold{k}" / "model.weights.h5").is_file()
    # a finished fold is loaded, not trained again
    (tmp_path / "seed0" / "fold2" / "done.json").unlink()
    again = cross_validate(data, folds, **kwargs)
    assert [f.resumed for f in again.folds] == [True, True, False]
    assert np.allclose(again.oof[folds < 2], result.oof[folds < 2])
    assert np.allclose(again.oof, result.oof, atol=1e-3)


@pytest.mark.slow
def test_seeds_average(tmp_path: Path):
    data = _data(n=30, n_test=4)
    result = cross_validate(data, np.random.default_rng(2).permutation(np.arange(30) % 2), seeds=(0, 1), run_dir=tmp_path,
                            build=build_dense_head, head=HeadConfig(hidden=8), train=CONFIG)
    assert len(result.folds) == 4 and {f.seed for f in result.folds} == {0, 1}
    assert np.allclose(result.oof.sum(axis=1), 1)


def test_executor_registry():
    assert isinstance(executor_registry().get("local")(), LocalExecutor)
    assert LocalExecutor().map(lambda x: x * 2, [1, 2]) == [2, 4]


@pytest.mark.slow
def test_a_reused_trainer_fits_exactly_like_a_fresh_model():
    from kit.models.train import HeadTrainer, fit_head, predict

    data = _data(n=45)
    x, y = data.x_train["plain"], data.y_train

    def build():
        return build_dense_head(x.shape[1:], 3, HeadConfig(hidden=8, dropout=0.3))

    trainer = HeadTrainer(build, n_classes=3)
    trainer.fit(x[:30], y[:30], config=CONFIG)  # a first fold changes weights, optimizer, RNG
    reused = trainer.fit(x[15:], y[15:], config=CONFIG)
    reused_probs = predict(reused.model, x)
    fresh = fit_head(build, x[15:], y[15:], n_classes=3, config=CONFIG)
    assert reused.history["loss"] == pytest.approx(fresh.history["loss"], rel=1e-5)
    assert np.allclose(reused_probs, predict(fresh.model, x), atol=1e-6)


# ---------------------------------------------------------------- pseudo-labels, boxes, metadata


def test_pseudo_rows_take_the_folds_own_confident_test_predictions():
    from kit.cv.pseudo import pseudo_rows
    from kit.cv.task import FoldResult

    test = np.array([[0.95, 0.05], [0.6, 0.4], [0.02, 0.98]])
    first = FoldResult(fold=0, seed=0, val_index=np.arange(2), oof=np.zeros((2, 2)), test=test,
                       log_loss=0.0, best_epoch=1, seconds=0.0, resumed=False)
    rows = pseudo_rows(first, 0.9)
    assert rows.index.tolist() == [0, 2] and rows.labels.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"threshold must be in \[0.5, 1\); received 1.2"):
        pseudo_rows(first, 1.2)


def test_a_fold_trains_on_its_training_rows_and_pseudo_rows_never_its_validation_rows():
    from kit.cv.data import PseudoRows, fold_training_rows
    from kit.cv.task import FoldTask

    n, n_test = 12, 5
    ids = np.arange(n, dtype=np.float32)[:, None]  # each row's feature is its own id
    data = EnsembleData(variants=("plain",), x_train={"plain": ids}, y_train=np.arange(n) % 2,
                        x_test={"plain": 100 + np.arange(n_test, dtype=np.float32)[:, None]},
                        n_classes=2, meta_train=ids * 10, meta_test=np.zeros((n_test, 1)),
                        boxes_train=np.ones((n, 5), np.float32))
    task = FoldTask(fold=0, seed=0, folder=Path("."), val_index=np.array([1, 4, 7]))
    got = fold_training_rows(task, data, PseudoRows(index=np.array([0, 3]),
                                                    labels=np.array([1, 1])))
    rows = got.x["features"][:, 0].tolist()
    assert not {1, 4, 7} & set(rows)
    assert rows == [0, 2, 3, 5, 6, 8, 9, 10, 11, 100, 103]
    assert got.y.tolist() == [0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1]
    assert got.boxes[-2:, 4].tolist() == [0, 0] and got.boxes[:-2, 4].all()  # none for pseudo
    assert got.views == ()  # no BoxGeometry: the plain view alone


def test_a_box_folds_other_views_hold_its_training_rows_with_their_boxes_moved():
    from kit.cv.data import BoxGeometry, fold_training_rows
    from kit.cv.task import FoldTask
    from kit.data.tta import map_boxes

    n = 6
    ids = np.arange(n, dtype=np.float32)[:, None]
    boxes = np.column_stack([np.full((n, 2), 4.0), np.full((n, 2), 8.0), np.ones(n)])
    sizes = np.array([(160, 90)] * n)
    data = EnsembleData(variants=("plain", "hflip"),
                        x_train={"plain": ids, "hflip": 10 + ids, "crop_tl": 20 + ids},
                        y_train=np.arange(n) % 2, x_test={"plain": ids[:2], "hflip": ids[:2]},
                        n_classes=2, boxes_train=boxes.astype(np.float32),
                        box_geometry=BoxGeometry(input_size=(32, 32), train_sizes=sizes,
                                                 test_sizes=sizes[:2],
                                                 views=("plain", "hflip", "crop_tl")))
    task = FoldTask(fold=0, seed=0, folder=Path("."), val_index=np.array([1, 4]))
    got = fold_training_rows(task, data)
    assert [v.x[:, 0].tolist() for v in got.views] == [[10, 12, 13, 15], [20, 22, 23, 25]]
    np.testing.assert_allclose(got.views[0].boxes, map_boxes(boxes[[0, 2, 3, 5]], "hflip",
                                                             sizes[:4], (32, 32)))
    assert got.views[0].boxes[0, :4].tolist() == [20, 4, 8, 8]  # 32 - 4 - 8


def test_predicted_boxes_are_averaged_over_views_brought_back_to_the_plain_view():
    from kit.cv.data import BoxGeometry
    from kit.cv.heads import predict_boxes

    class Fixed:  # predicts the box a flipped view shows of a box at x = 2..6 in a 32 px input
        def predict_on_batch(self, x):
            flipped = x[:, 0] > 0
            box = np.where(flipped[:, None], [26.0, 0, 4, 4], [2.0, 0, 4, 4])
            return {"probs": np.full((len(x), 2), 0.5), "box": box}

    x = np.zeros((3, 1), np.float32)
    data = EnsembleData(variants=("plain", "hflip"), x_train={"plain": x, "hflip": x + 1},
                        y_train=np.zeros(3, int), x_test={"plain": x, "hflip": x + 1},
                        n_classes=2, box_geometry=BoxGeometry(
                            input_size=(32, 32), train_sizes=np.array([(64, 64)] * 3),
                            test_sizes=np.array([(64, 64)] * 3)))
    np.testing.assert_allclose(predict_boxes(Fixed(), data, "test"), [[2, 0, 4, 4]] * 3)
    plain_only = dataclasses.replace(data, box_geometry=None)
    np.testing.assert_allclose(predict_boxes(Fixed(), plain_only, "train"), [[2, 0, 4, 4]] * 3)


@pytest.mark.slow
def test_pseudo_labels_carry_nothing_of_a_folds_validation_labels(tmp_path: Path):
    """Change the labels of fold 0's validation rows: fold 0's predictions must not move.

    They would, if fold 0's pseudo-labels came from models that trained on those rows (the
    other folds, or the whole ensemble), or if the validation rows were pseudo-labelled into
    fold 0's training. Fold 1 trains on those rows, so its predictions do move: the change
    reaches the system, and only fold 0 is shielded from it.
    """
    data = _data(n=60, n_test=30)
    folds = np.arange(60) % 3
    kwargs = dict(seeds=(0,), build=build_dense_head, head=HeadConfig(hidden=8, dropout=0.1),
                  train=CONFIG, pseudo_label=0.6)
    first = cross_validate(data, folds, run_dir=tmp_path / "a", **kwargs)
    assert all(f.n_pseudo > 0 for f in first.folds)  # pseudo-labels were really used
    assert (tmp_path / "a" / "seed0" / "fold0" / "pseudo0.6" / "done.json").is_file()
    changed = data.y_train.copy()
    val0 = folds == 0
    changed[val0] = (changed[val0] + 1) % 3
    second = cross_validate(dataclasses.replace(data, y_train=changed), folds,
                            run_dir=tmp_path / "b", **kwargs)
    assert np.allclose(first.oof[val0], second.oof[val0], atol=1e-6)
    assert not np.allclose(first.oof[folds == 1], second.oof[folds == 1], atol=1e-3)


def _box_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 3, 3, 2)).astype(np.float32)
    boxes = np.zeros((n, 5), np.float32)
    boxes[:, :4] = 10 + 5 * x[:, 0, 0, :1] + rng.normal(size=(n, 4))
    boxes[:, 4] = y  # class 0 plays NoF: no box
    return EnsembleData(variants=("plain",), x_train={"plain": x}, y_train=y,
                        x_test={"plain": x[:4]}, n_classes=2, boxes_train=boxes)


@pytest.mark.slow
def test_bbox_rows_without_a_box_do_not_touch_the_box_loss(tmp_path: Path):
    from kit.models.heads import head_registry

    data = _box_data()
    garbage = data.boxes_train.copy()
    garbage[garbage[:, 4] == 0, :4] = 1e4  # huge targets where there is no box
    kwargs = dict(seeds=(0,), build=head_registry().get("bbox"),
                  head=HeadConfig(hidden=8, input_size=(48, 48)), train=CONFIG)
    folds = np.arange(48) % 2
    a = cross_validate(data, folds, run_dir=tmp_path / "a", **kwargs)
    b = cross_validate(dataclasses.replace(data, boxes_train=garbage), folds,
                       run_dir=tmp_path / "b", **kwargs)
    assert a.box_oof.shape == (48, 4)
    assert np.allclose(a.box_oof, b.box_oof, atol=1e-5) and np.allclose(a.oof, b.oof, atol=1e-6)
    for name in ("box_oof", "box_train", "box_test"):
        assert (tmp_path / "a" / "seed0" / "fold0" / f"{name}.npy").is_file()
    resumed = cross_validate(data, folds, run_dir=tmp_path / "a", **kwargs)
    assert all(f.resumed for f in resumed.folds) and np.allclose(resumed.box_oof, a.box_oof)


@pytest.mark.slow
def test_a_box_folds_validation_boxes_reach_it_in_no_view(tmp_path: Path):
    """Move fold 0's validation boxes: with flipped views in training, fold 0's predictions
    must not move (fold 1, which trains on those rows, does)."""
    from kit.cv.data import BoxGeometry
    from kit.models.heads import head_registry

    data = _box_data()
    flipped = data.x_train["plain"][:, :, ::-1].copy()
    sizes = np.array([(96, 96)] * 48)
    data = dataclasses.replace(
        data, variants=("plain", "hflip"), x_train={"plain": data.x_train["plain"],
                                                    "hflip": flipped},
        x_test={"plain": data.x_test["plain"], "hflip": data.x_test["plain"][:, :, ::-1]},
        box_geometry=BoxGeometry(input_size=(48, 48), train_sizes=sizes, test_sizes=sizes[:4],
                                 views=("plain", "hflip")))
    folds = (np.arange(48) // 2) % 2  # each fold holds images with boxes and without
    kwargs = dict(seeds=(0,), build=head_registry().get("bbox"),
                  head=HeadConfig(hidden=8, input_size=(48, 48)), train=CONFIG)
    a = cross_validate(data, folds, run_dir=tmp_path / "a", **kwargs)
    moved = data.boxes_train.copy()
    moved[folds == 0, :2] += 7
    b = cross_validate(dataclasses.replace(data, boxes_train=moved), folds,
                       run_dir=tmp_path / "b", **kwargs)
    val0 = folds == 0
    assert np.allclose(a.box_oof[val0], b.box_oof[val0], atol=1e-5)
    assert not np.allclose(a.box_oof[~val0], b.box_oof[~val0], atol=1e-3)


@pytest.mark.slow
def test_metadata_reaches_a_metadata_merge_head(tmp_path: Path):
    from kit.models.heads import head_registry

    rng = np.random.default_rng(0)
    n = 60
    y = np.arange(n) % 3
    meta = np.eye(3, dtype=np.float32)[y]  # the metadata alone gives the class away
    noise = rng.normal(size=(n, 4)).astype(np.float32)
    data = EnsembleData(variants=("plain",), x_train={"plain": noise}, y_train=y,
                        x_test={"plain": noise[:6]}, n_classes=3, meta_train=meta,
                        meta_test=meta[:6])
    kwargs = dict(seeds=(0,), head=HeadConfig(hidden=8, dropout=0.1), train=CONFIG)
    folds = (np.arange(n) // 3) % 3
    merged = cross_validate(data, folds, run_dir=tmp_path / "m",
                            build=head_registry().get("metadata-merge"), **kwargs)
    image_only = cross_validate(dataclasses.replace(data, meta_train=None, meta_test=None), folds,
                                run_dir=tmp_path / "d", build=build_dense_head, **kwargs)
    assert merged.test.shape == (6, 3)
    assert merged.cv_log_loss < 0.6 * log_loss(y, np.full((n, 3), 1 / 3))
    assert merged.cv_log_loss < 0.6 * image_only.cv_log_loss
