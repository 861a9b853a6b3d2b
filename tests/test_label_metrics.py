"""kit.scoring.label_metrics and kit.scoring.metric: pure float64 functions equal to sklearn's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from kit.competition import METRICS
from kit.scoring.label_metrics import accuracy, f1_macro, f1_micro, roc_auc
from kit.scoring.metric import get_metric, metric_registry

labels = st.lists(st.integers(0, 4), min_size=1, max_size=60)


@given(labels, st.randoms(use_true_random=False))
def test_label_metrics_equal_sklearn(y_true, random):
    y_pred = [random.randint(0, 4) if random.random() < 0.5 else t for t in y_true]
    assert accuracy(y_true, y_pred) == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert f1_micro(y_true, y_pred) == pytest.approx(
        f1_score(y_true, y_pred, average="micro"), abs=1e-12)
    assert f1_macro(y_true, y_pred) == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)


@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.1, 0.2, 0.5, 0.7, 0.9])),
                min_size=2, max_size=60))
def test_roc_auc_equals_sklearn_with_ties(rows):
    y, score = zip(*rows, strict=True)
    if len(set(y)) < 2:
        with pytest.raises(ValueError, match="only one class"):
            roc_auc(y, score)
        return
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="must be 1-D of one length"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="y_true is empty"):
        f1_micro([], [])
    with pytest.raises(ValueError, match="roc_auc needs labels 0 and 1; received \\[0, 2\\]"):
        roc_auc([0, 2], [0.1, 0.2])


def test_every_declarable_metric_has_a_function_and_a_direction():
    assert set(metric_registry().names()) == set(METRICS)
    assert get_metric("log_loss").direction == "lower"
    for name in ("accuracy", "f1_micro", "f1_macro", "roc_auc"):
        assert get_metric(name).direction == "higher"
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.4, 0.6]])
    assert get_metric("accuracy").score(y, probs) == 0.5
    assert get_metric("roc_auc").score(y, probs) == pytest.approx(
        roc_auc_score(y, probs[:, 1]))
    assert get_metric("log_loss").score(y, probs) == pytest.approx(
        -np.mean(np.log([0.8, 0.7, 0.4, 0.4])))
    assert get_metric("f1_macro").better(0.9, 0.8) and get_metric("log_loss").better(0.8, 0.9)
    with pytest.raises(KeyError, match="unknown metric 'f1_mikro'. Did you mean: f1_micro"):
        get_metric("f1_mikro")
