"""`--heads`: one row per head, the printed table, and the comparison written into each record."""

import json
from pathlib import Path

import pytest

from kit.app.compare import compare_heads, comparison_row, format_table
from kit.runs.record import RunRecord


def _summary(tmp_path: Path, head: str, cv: float, public=None, private=None) -> dict:
    record = RunRecord(competition="fisheries", run_id=head, run_dir=str(tmp_path)).write(
        tmp_path / f"{head}.json")
    out = {"run_id": head, "cv_log_loss": cv, "record": str(record),
           "timings": {"total": 12.5, "pretrain_demo_base": 10.0}}
    if public is not None:
        out["local_score"] = {"public": public, "private": private}
    if head == "bbox":
        out["bbox_iou"] = 0.42
    return out


def test_row_takes_scores_and_leaves_out_the_one_off_pretraining(tmp_path):
    row = comparison_row("dense", _summary(tmp_path, "dense", 1.0, 0.9, 1.1))
    assert row == {"head": "dense", "cv_log_loss": 1.0, "public": 0.9, "private": 1.1,
                   "seconds": 2.5, "metric": "log_loss", "cv_score": 1.0}
    assert comparison_row("dense", _summary(tmp_path, "dense", 1.0))["public"] is None


def test_a_table_in_another_metric_adds_the_cv_in_that_metric():
    text = format_table([{"head": "dense", "cv_log_loss": 0.5, "public": 0.81, "private": 0.8,
                          "seconds": 3.0, "metric": "f1_micro", "cv_score": 0.83}])
    assert text.splitlines() == [
        "head            CV log loss  CV f1_micro    public   private   seconds",
        "dense                0.5000       0.8300    0.8100    0.8000       3.0",
    ]


def test_table_is_fixed_width_with_na_for_unknown_scores():
    text = format_table([{"head": "metadata-merge", "cv_log_loss": 1.00091, "public": 0.9104,
                          "private": None, "seconds": 14.54}])
    assert text.splitlines() == [
        "head            CV log loss    public   private   seconds",
        "metadata-merge       1.0009    0.9104       n/a      14.5",
    ]


def test_compare_runs_every_head_and_writes_the_table_into_each_record(tmp_path):
    import dataclasses

    from kit.competition import Recipe

    @dataclasses.dataclass(frozen=True)
    class Options:
        recipe: Recipe

    seen, lines = [], []

    def run_one(opts):
        seen.append(opts.recipe.head)
        return _summary(tmp_path, opts.recipe.head, 1.0 + len(seen), 0.5, 0.7)

    out = compare_heads(Options(recipe=Recipe()), ["dense", "bbox"], run_one=run_one,
                        log=lines.append)
    assert seen == ["dense", "bbox"]
    assert [r["head"] for r in out["comparison"]] == ["dense", "bbox"]
    assert out["bbox_iou"] == 0.42 and out["run_id"] == "dense" and len(out["runs"]) == 2
    assert any(line.startswith("head            CV log loss") for line in lines)
    for head in ("dense", "bbox"):
        assert json.loads((tmp_path / f"{head}.json").read_text())["comparison"] == \
            out["comparison"]
    with pytest.raises(ValueError, match="--heads needs at least one head name"):
        compare_heads(Options(recipe=Recipe()), [], run_one=run_one)
