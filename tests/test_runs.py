"""kit.runs: the run record (one writer, one reader, versioned), the run folder, finding runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.runs.find import pick_run, record_of_submission, records_in, run_ids, run_on_data
from kit.runs.layout import RunFolder
from kit.runs.record import SCHEMA_VERSION, RunRecord, record_path

V1 = Path(__file__).parent / "data" / "record_v1.json"


def test_a_record_written_before_the_schema_version_reads_as_version_1():
    record = RunRecord.read(V1)
    assert record.schema_version == 1
    assert (record.competition, record.run_id) == ("fisheries", "20261202-115057-174d97bd")
    assert record.cv_log_loss == pytest.approx(1.0608593974344358)
    assert record.seeds == (0,) and record.input_size == (64, 64)
    assert record.tta_variants == ("plain", "hflip")
    assert record.recipe["backbone"] == "demo_cnn"
    assert record.folder == RunFolder(Path("/work/.kit/runs/fisheries/174d97bdee5102ff"))
    assert record.oof_file == Path("/work/.kit/runs/fisheries/174d97bdee5102ff/oof.csv")
    assert record.data_root == Path("/work/.kit/demo/fisheries/full/seed0")


def test_rewriting_a_version_1_record_keeps_every_key_and_adds_the_version(tmp_path: Path):
    original = json.loads(V1.read_text())
    path = RunRecord.read(V1).write(tmp_path / "r.json")
    written = json.loads(path.read_text())
    assert written.pop("schema_version") == SCHEMA_VERSION
    assert written == original
    assert list(written) == list(original)  # the same key order as `kit run` always wrote


def test_unknown_keys_survive_a_round_trip(tmp_path: Path):
    data = {**json.loads(V1.read_text()), "from_a_newer_kit": {"x": 1}}
    (tmp_path / "r.json").write_text(json.dumps(data))
    record = RunRecord.read(tmp_path / "r.json")
    assert record.extra == {"from_a_newer_kit": {"x": 1}}
    assert json.loads(record.write(tmp_path / "s.json").read_text())["from_a_newer_kit"] == {
        "x": 1}


def test_summary_holds_the_run_json_keys_in_order():
    summary = RunRecord.read(V1).summary()
    assert list(summary) == ["competition", "run_id", "submission", "cv_log_loss",
                             "prior_log_loss", "cv_vs_prior", "clip", "clipped_cv_log_loss",
                             "n_train", "n_test", "fold_scores", "timings", "head", "mode"]
    with_box = RunRecord(competition="f", run_id="r", bbox_iou=0.5).summary()
    assert with_box["bbox_iou"] == 0.5 and "pseudo_label" not in with_box


def test_read_errors_name_the_file_and_the_fix(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"run record .*nope.json does not exist; pass"):
        RunRecord.read(tmp_path / "nope.json")
    (tmp_path / "partial.json").write_text(json.dumps({"competition": "fisheries"}))
    with pytest.raises(ValueError, match=r"lacks \['run_id', 'run_dir', 'config', "
                                         r"'predictions'\].*re-run"):
        RunRecord.read(tmp_path / "partial.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        RunRecord.read(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match="must hold a JSON object; received list"):
        RunRecord.read(tmp_path / "list.json")


def test_with_comparison_is_written_after_the_details(tmp_path: Path):
    rows = [{"head": "dense", "cv_log_loss": 1.0}]
    path = RunRecord.read(V1).with_comparison(rows).write(tmp_path / "r.json")
    written = json.loads(path.read_text())
    assert written["comparison"] == rows
    assert list(written)[-2:] == ["comparison", "schema_version"]


def test_the_run_folder_layout(tmp_path: Path):
    folder = RunFolder(tmp_path)
    fold = folder.fold(seed=2, fold=3)
    assert fold.weights == tmp_path / "seed2" / "fold3" / "model.weights.h5"
    assert fold.array("box_oof") == tmp_path / "seed2" / "fold3" / "box_oof.npy"
    assert fold.sub("pseudo0.9").done == tmp_path / "seed2" / "fold3" / "pseudo0.9" / "done.json"
    assert folder.stage("bbox").fold(seed=0, fold=0).path == tmp_path / "bbox" / "seed0" / "fold0"
    for seed, k in ((1, 0), (0, 1), (0, 0)):
        folder.fold(seed=seed, fold=k).path.mkdir(parents=True)
    (tmp_path / "seedX" / "fold0").mkdir(parents=True)  # not a fold folder
    assert [(s, k) for s, k, _ in folder.fold_folders()] == [(0, 0), (0, 1), (1, 0)]
    assert folder.finished_folds() == []
    done = folder.fold(seed=0, fold=1)
    done.done.write_text("{}")
    done.weights.write_bytes(b"w")
    assert folder.finished_folds() == [done]


def _write(folder: Path, run_id: str, *, root: str, created: str = "2024-01-01") -> Path:
    return RunRecord(competition="fisheries", run_id=run_id, run_dir=str(folder / run_id),
                     created=created, data={"root": root}).write(folder / f"{run_id}.json")


def test_finding_runs_by_id_prefix_data_and_submission(tmp_path: Path):
    a = _write(tmp_path, "20240101-000000-aaaaaaaa", root=str(tmp_path / "d1"))
    b = _write(tmp_path, "20240102-000000-bbbbbbbb", root=str(tmp_path / "d2"),
               created="2024-01-02")
    (tmp_path / "notes.json").write_text("{}")  # not a run record: ignored
    assert run_ids(tmp_path) == ["20240101-000000-aaaaaaaa", "20240102-000000-bbbbbbbb"]
    assert [p for p, _ in records_in(tmp_path)] == [a, b]
    assert pick_run(tmp_path, "fisheries", None) == b
    assert pick_run(tmp_path, "fisheries", "20240101") == a
    with pytest.raises(ValueError, match="matches 2 runs"):
        pick_run(tmp_path, "fisheries", "2024010")
    with pytest.raises(ValueError, match="Did you mean: 20240102-000000-bbbbbbbb"):
        pick_run(tmp_path, "fisheries", "20240102-000000-bbbbbbbc")
    assert run_on_data(tmp_path, tmp_path / "d1")[0] == a
    assert run_on_data(tmp_path, tmp_path / "d3") is None
    with pytest.raises(ValueError, match="not on .*d2; pass the same --data/--demo"):
        run_on_data(tmp_path, tmp_path / "d2", run_id="20240101-000000-aaaaaaaa")
    assert record_of_submission(a.with_suffix(".csv")).run_id == "20240101-000000-aaaaaaaa"
    assert record_of_submission(tmp_path / "by-hand.csv") is None
    assert record_path(tmp_path / "x.csv") == tmp_path / "x.json"
