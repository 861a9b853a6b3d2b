import numpy as np
import pytest

from kit.models.train import TrainView, concat, masked_box_loss, with_views


def _loss(true, pred):
    return np.asarray(masked_box_loss(np.asarray(true, np.float32), np.asarray(pred, np.float32)))


def test_box_loss_is_one_minus_generalised_iou_masked_where_there_is_no_box():
    true = [[10, 10, 20, 20, 1], [10, 10, 20, 20, 1], [0, 0, 10, 10, 1], [10, 10, 20, 20, 0]]
    pred = [[10, 10, 20, 20], [20, 10, 20, 20], [20, 0, 10, 10], [50, 50, 5, 5]]
    out = _loss(true, pred)
    assert out[0] == pytest.approx(0, abs=1e-5)  # the same box
    assert out[1] == pytest.approx(1 - 200 / 600, abs=1e-5)  # IoU 1/3, hull = union
    # disjoint: IoU 0, the hull (30 x 10) is one third empty: 1 - (0 - 1/3)
    assert out[2] == pytest.approx(1 + 1 / 3, abs=1e-5)
    assert out[3] == 0  # no box: masked


def test_box_loss_does_not_depend_on_the_units():
    rng = np.random.default_rng(0)
    true = np.column_stack([rng.uniform(0, 50, (8, 2)), rng.uniform(5, 30, (8, 2)), np.ones(8)])
    pred = np.column_stack([rng.uniform(0, 50, (8, 2)), rng.uniform(5, 30, (8, 2))])
    scaled = true.copy()
    scaled[:, :4] *= 3.5
    np.testing.assert_allclose(_loss(true, pred), _loss(scaled, pred * 3.5), atol=1e-5)


def test_with_views_adds_the_same_rows_of_every_view_and_no_other():
    x = np.arange(6, dtype=np.float32)[:, None]  # 5 training rows + 1 pseudo row
    targets = {"probs": np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0, 1]],
               "box": np.zeros((6, 5), np.float32)}
    view = TrainView(x=100 + x[:5], boxes=np.full((5, 5), 7, np.float32))
    rows = np.array([0, 2, 3, 5])  # 1 and 4 are held out for early stopping
    fit_x, fit_t = with_views(x, targets, rows, [view])
    assert fit_x[:, 0].tolist() == [0, 2, 3, 5, 100, 102, 103]  # the pseudo row has no view
    assert fit_t["probs"].argmax(1).tolist() == [0, 0, 1, 1, 0, 0, 1]
    assert (fit_t["box"][4:] == 7).all() and (fit_t["box"][:4] == 0).all()
    plain_x, plain_t = with_views(x, targets, rows, [])
    assert plain_x[:, 0].tolist() == [0, 2, 3, 5] and len(plain_t["probs"]) == 4
    with pytest.raises(ValueError, match="a training view has 5 rows and 2 box targets"):
        with_views(x, targets, rows, [TrainView(x=x[:5], boxes=np.zeros((2, 5)))])


def test_concat_joins_arrays_and_dicts_of_arrays():
    a, b = np.zeros((2, 3)), np.ones((1, 3))
    assert concat([a, b]).shape == (3, 3)
    out = concat([{"features": a, "meta": a[:, :1]}, {"features": b, "meta": b[:, :1]}])
    assert out["features"].shape == (3, 3) and out["meta"][:, 0].tolist() == [0, 0, 1]


def test_views_need_a_head_with_a_box_output():
    from kit.models.heads import HeadConfig, head_registry
    from kit.models.train import HeadTrainer, TrainConfig

    build = head_registry().get("dense")
    trainer = HeadTrainer(lambda: build((4,), 2, HeadConfig(hidden=4)), n_classes=2)
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="training views carry box targets; they need a head "
                                         "with a box output"):
        trainer.fit(x, np.arange(20) % 2, config=TrainConfig(epochs=1),
                    views=[TrainView(x=x, boxes=np.zeros((20, 5)))])
