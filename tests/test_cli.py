"""End-to-end: the real CLI on the tiny demo datasets, and its errors for bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from kit.cli.main import main
from tests.conftest import REPO, write_jpeg

FISHERIES = str(REPO / "competitions" / "fisheries")
CATS = str(REPO / "competitions" / "dogs-vs-cats-redux")
FAST = ["--demo", "--demo-preset", "tiny", "--folds", "3", "--epochs", "4"]


@pytest.fixture(scope="module")
def shared_work(tmp_path_factory) -> Path:
    """One work folder per module: the tiny demo data and its pretrained base are built once."""
    return tmp_path_factory.mktemp("work")


@pytest.fixture
def env(shared_work: Path, tmp_path: Path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("KIT_WORK_DIR", str(shared_work))
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "submissions"))
    return {**os.environ, "KIT_WORK_DIR": str(shared_work),
            "KIT_SUBMISSIONS_DIR": str(tmp_path / "submissions"), "PYTHONUNBUFFERED": "1"}


def _cli(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kit", *args], env=env, capture_output=True,
                          text=True, timeout=600, **kw)


@pytest.mark.slow
def test_fisheries_demo_run_and_score_through_the_real_cli(env, tmp_path: Path):
    out_json = tmp_path / "run.json"
    proc = _cli(["run", FISHERIES, *FAST, "--json", str(out_json)], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out_json.read_text())
    for key in ("competition", "run_id", "submission", "cv_log_loss", "clip", "n_test", "timings"):
        assert key in result
    assert result["competition"] == "fisheries" and result["n_test"] == 32
    submission = Path(result["submission"])
    assert submission.parent == tmp_path / "submissions" / "fisheries"
    frame = pd.read_csv(submission)
    assert list(frame.columns) == ["image", "ALB", "BET", "DOL", "LAG", "NoF", "OTHER", "SHARK",
                                   "YFT"]
    assert len(frame) == 32 and frame["image"].str.startswith("test_stg2/").sum() == 16
    assert frame.iloc[:, 1:].notna().all().all()
    record = json.loads(submission.with_suffix(".json").read_text())
    assert record["config"]["recipe"]["folds"] == 3
    assert len(record["fold_scores"]) == 3 and "versions" in record
    oof = pd.read_csv(record["predictions"]["oof"])
    assert len(oof) == 48 and list(oof.columns[:2]) == ["path", "label"]
    assert len(pd.read_csv(record["predictions"]["test"])) == 32
    assert "public" in result["local_score"] and "private" in result["local_score"]
    expected = result["expected_private"]  # the nested ensemble's OOF rows, 3 folds
    assert expected["reference"] == "ensemble" and expected["n_private"] == 16  # test_stg2
    assert expected["low"] <= expected["value"] <= expected["high"]
    assert "expected private \u2248" in proc.stdout
    assert record["calibration"]["kind"] in ("none", "clip", "temperature")
    assert set(record["calibration"]["cross_fitted_log_loss"]) == {"none", "clip", "temperature"}
    assert (Path(record["run_dir"]) / "seed0" / "nested_oof.npz").is_file()

    score_json = tmp_path / "score.json"
    proc = _cli(["score", FISHERIES, str(submission), "--demo", "--demo-preset", "tiny",
                 "--json", str(score_json)], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    score = json.loads(score_json.read_text())
    assert score["n_rows"] == 32 and score["public"] == pytest.approx(
        result["local_score"]["public"])
    assert "public" in proc.stdout and "private" in proc.stdout


@pytest.mark.slow
def test_dogs_vs_cats_demo_run_writes_id_label(env, tmp_path: Path):
    out_json = tmp_path / "run.json"
    assert main(["run", CATS, *FAST, "--tta", "1", "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    frame = pd.read_csv(result["submission"])
    assert list(frame.columns) == ["id", "label"] and len(frame) == 12
    assert frame["label"].between(0, 1).all()


@pytest.mark.slow
def test_sample_runs_on_a_stratified_subset(env, tmp_path: Path):
    out_json = tmp_path / "run.json"
    assert main(["run", FISHERIES, *FAST, "--sample", "40", "--tta", "1",
                 "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    assert result["n_train"] == 40 and result["n_test"] == 32
    # the class-prior baseline is the prior of the 40 images the run trained on
    from kit.competition import load_competition
    from kit.scoring.score import prior_scores, read_solution

    competition = load_competition(FISHERIES)
    record = json.loads(Path(result["submission"]).with_suffix(".json").read_text())
    labels = [competition.classes.index(c) for c in pd.read_csv(record["predictions"]["oof"])[
        "label"]]
    solution = read_solution(Path(record["data"]["root"]) / "solution.csv", competition)
    expected = prior_scores(labels, solution, competition)
    assert result["local_score"]["baseline"]["public"] == pytest.approx(expected.public)


@pytest.mark.slow
def test_unreadable_images_are_skipped_in_training_and_predicted_in_test(env, tmp_path: Path):
    data = tmp_path / "data"
    assert main(["demo", FISHERIES, "--out", str(data), "--preset", "tiny"]) == 0
    train_victim = sorted((data / "train" / "ALB").glob("*.jpg"))[0]
    train_victim.write_bytes(b"")
    test_victim = sorted((data / "test_stg1").glob("*.jpg"))[0]
    test_victim.write_bytes(test_victim.read_bytes()[:200])  # truncated
    out_json = tmp_path / "run.json"
    assert main(["run", FISHERIES, "--data", str(data), "--backbone", "demo_cnn",
                 "--weights", "none", "--input-size", "32x32", "--folds", "3", "--epochs", "2",
                 "--tta", "1", "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    record = json.loads(Path(result["submission"]).with_suffix(".json").read_text())
    assert [u["file"] for u in record["unreadable"]["train"]] == [str(train_victim)]
    assert [u["file"] for u in record["unreadable"]["test"]] == [str(test_victim)]
    frame = pd.read_csv(result["submission"])
    assert len(frame) == 32 and result["n_train"] == 47


def test_unknown_competition(env, capsys):
    assert main(["run", "fisheris", "--demo"]) == 2
    assert "unknown competition 'fisheris'" in capsys.readouterr().err


def test_no_data_names_every_way_to_get_some(env, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("KIT_WORK_DIR", str(tmp_path / "empty-work"))
    assert main(["run", FISHERIES]) == 2
    err = capsys.readouterr().err
    assert "--demo" in err and "--data DIR" in err and "download" in err


def test_unknown_backbone(env, capsys):
    assert main(["run", FISHERIES, "--demo", "--backbone", "vgg61"]) == 2
    err = capsys.readouterr().err
    assert "unknown backbone 'vgg61'. Did you mean: vgg16" in err


def test_missing_imagenet_weights_fail_within_seconds(env, capsys, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("kit.features.backbones.keras_cache_candidates",
                        lambda name: (tmp_path / "keras" / "models" / name,))
    start = time.perf_counter()
    code = main(["run", FISHERIES, "--demo", "--demo-preset", "tiny", "--backbone", "vgg16",
                 "--weights", "imagenet"])
    assert code == 2 and time.perf_counter() - start < 30
    err = capsys.readouterr().err
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in err and "--weights PATH" in err


def test_sample_submission_that_does_not_match(env, tmp_path: Path, capsys):
    data = tmp_path / "data"
    assert main(["demo", FISHERIES, "--out", str(data), "--preset", "tiny"]) == 0
    write_jpeg(data / "test_stg1" / "img_99999.jpg")
    submissions = Path(os.environ["KIT_SUBMISSIONS_DIR"])
    assert main(["run", FISHERIES, "--data", str(data)]) == 2
    assert "does not match the test folders" in capsys.readouterr().err
    assert not submissions.exists() or not any(submissions.rglob("*.csv"))


def test_score_without_solution(env, tmp_path: Path, capsys):
    assert main(["score", FISHERIES, str(tmp_path / "x.csv")]) == 2
    assert "--solution FILE" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_run_resumes_and_finishes_with_the_same_submission(env, tmp_path: Path):
    # per-fold training: the fused path finishes every fold in one pass (test_fused resumes it)
    args = ["run", FISHERIES, "--demo", "--demo-preset", "tiny", "--folds", "3", "--epochs", "6",
            "--tta", "1", "--training", "per-fold", "--json"]
    reference_json = tmp_path / "reference.json"
    assert _cli([*args, str(reference_json)], env).returncode == 0
    reference = json.loads(reference_json.read_text())
    run_dir = Path(json.loads(Path(reference["submission"]).with_suffix(".json").read_text())[
        "run_dir"])
    for done in run_dir.rglob("done.json"):  # forget the folds, keep the cached features
        done.unlink()

    proc = subprocess.Popen([sys.executable, "-m", "kit", *args, str(tmp_path / "killed.json")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run_dir / "seed0" / "fold0" / "done.json").exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed.json").exists()
    assert not (run_dir / "seed0" / "fold2" / "done.json").exists()

    resumed_json = tmp_path / "resumed.json"
    assert _cli([*args, str(resumed_json)], env).returncode == 0
    resumed = json.loads(resumed_json.read_text())
    folds = {f["fold"]: f for f in resumed["fold_scores"]}
    assert folds[0]["resumed"] and not folds[2]["resumed"]
    a = pd.read_csv(reference["submission"]).set_index("image")
    b = pd.read_csv(resumed["submission"]).set_index("image")
    assert (a.index == b.index).all()
    assert (a - b).abs().to_numpy().max() < 1e-3


@pytest.mark.slow
def test_a_failing_report_does_not_fail_the_run(env, tmp_path: Path, monkeypatch, capsys):
    def broken(record):
        raise ValueError("plotting failed")

    monkeypatch.setattr("kit.report.write.write_report", broken)
    out_json = tmp_path / "run.json"
    assert main(["run", CATS, *FAST, "--tta", "1", "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    assert result["report"] is None and Path(result["submission"]).is_file()
    err = capsys.readouterr().err
    assert "the report was not written (plotting failed)" in err
    assert "python -m kit report dogs-vs-cats-redux" in err


@pytest.mark.slow
def test_several_seeds_train_every_fold_per_seed(env, tmp_path: Path):
    out_json = tmp_path / "run.json"
    assert main(["run", CATS, *FAST, "--tta", "1", "--seeds", "0,1", "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    assert sorted((f["seed"], f["fold"]) for f in result["fold_scores"]) == [
        (s, k) for s in (0, 1) for k in range(3)]


def test_bad_seeds_are_a_usage_error(env, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["run", CATS, "--demo", "--seeds", "0,x"])
    assert caught.value.code == 2
    assert "--seeds takes comma-separated integers" in capsys.readouterr().err


def test_demo_weights_with_another_backbone_is_an_error_not_a_fallback(env, capsys):
    assert main(["run", FISHERIES, "--demo", "--demo-preset", "tiny", "--backbone", "vgg16"]) == 2
    err = capsys.readouterr().err
    assert "--weights demo is only for --backbone demo_cnn; received --backbone vgg16" in err
    assert "--weights imagenet, none or PATH" in err


# ---------------------------------------------------------------- issue 4: heads and modes


@pytest.mark.slow
def test_heads_comparison_trains_every_head_and_reports_the_table(env, tmp_path: Path):
    out_json = tmp_path / "cmp.json"
    proc = _cli(["run", FISHERIES, *FAST, "--tta", "1",
                 "--heads", "dense,metadata-merge,bbox,fcn,crop", "--json", str(out_json)], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out_json.read_text())
    rows = result["comparison"]
    assert [r["head"] for r in rows] == ["dense", "metadata-merge", "bbox", "fcn", "crop"]
    for row in rows:
        assert set(row) == {"head", "metric", "cv_score", "cv_log_loss", "public", "private",
                            "seconds"}
        assert row["cv_log_loss"] > 0 and row["public"] > 0 and row["private"] > 0
    assert 0 <= result["bbox_iou"] <= 1
    assert "head            CV log loss    public   private   seconds" in proc.stdout
    assert "metadata-merge: size (" in proc.stdout and "annotations: rect boxes from 6 files" \
        in proc.stdout
    for summary in result["runs"]:  # every head wrote a valid submission and its record
        frame = pd.read_csv(summary["submission"])
        assert len(frame) == 32 and frame.iloc[:, 1:].notna().all().all()
        record = json.loads(Path(summary["record"]).read_text())
        assert record["comparison"] == rows
    heads = [json.loads(Path(s["record"]).read_text())["config"]["recipe"]["head"]
             for s in result["runs"]]
    assert heads == ["dense", "metadata-merge", "bbox", "fcn", "crop"]
    # the same folds for every head
    folds = {Path(json.loads(Path(s["record"]).read_text())["run_dir"], "folds.csv").read_text()
             for s in result["runs"]}
    assert len(folds) == 1


@pytest.mark.slow
def test_a_box_head_reads_its_own_input_size_and_trains_on_flip_and_crop_views(env, tmp_path):
    out_json = tmp_path / "bbox.json"
    proc = _cli(["run", FISHERIES, *FAST, "--tta", "2", "--head", "bbox", "--box-input-size",
                 "96x56", "--box-variants", "3", "--json", str(out_json)], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out_json.read_text())
    record = json.loads(Path(result["record"]).read_text())
    assert record["config"]["input_size"] == [96, 56]
    assert record["config"]["recipe"]["box_variants"] == 3
    # plain and hflip of all 48 + 32 images (TTA), crop_tl of the 48 training images only
    assert record["features"]["computed"] + record["features"]["reused"] == 80 * 2 + 48
    assert 0 <= result["bbox_iou"] <= 1 and "backbone demo_cnn 96x56" in proc.stdout
    assert "box views plain, hflip, crop_tl" in proc.stdout
    assert len(pd.read_csv(result["submission"])) == 32


def test_box_heads_on_a_competition_without_boxes_say_so(env, capsys):
    for head in ("bbox", "crop"):
        assert main(["run", CATS, "--demo", "--demo-preset", "tiny", "--head", head]) == 2
        err = capsys.readouterr().err
        assert (f"error: the {head} head needs bounding boxes, and competition "
                "dogs-vs-cats-redux has no bounding-box annotations") in err
    assert main(["run", CATS, "--demo", "--demo-preset", "tiny", "--heads", "dense,bbox"]) == 2
    assert "has no bounding-box annotations" in capsys.readouterr().err


@pytest.mark.slow
def test_dogs_vs_cats_runs_the_heads_that_apply(env, tmp_path: Path):
    out_json = tmp_path / "cmp.json"
    proc = _cli(["run", CATS, *FAST, "--tta", "1", "--heads", "metadata-merge,fcn",
                 "--json", str(out_json)], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out_json.read_text())["comparison"]
    assert [r["head"] for r in rows] == ["metadata-merge", "fcn"]
    assert "bbox_iou" not in json.loads(out_json.read_text())


@pytest.mark.slow
def test_finetune_and_pseudo_label_runs_write_valid_submissions(env, tmp_path: Path):
    for extra in (["--mode", "finetune", "--epochs", "2"], ["--pseudo-label", "0.5"]):
        out_json = tmp_path / "run.json"
        proc = _cli(["run", FISHERIES, *FAST, "--tta", "1", *extra, "--json", str(out_json)], env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(out_json.read_text())
        assert len(pd.read_csv(result["submission"])) == 32
        if "--mode" in extra:
            assert result["mode"] == "finetune"
            # one model per row: its own OOF rows, less the estimated averaging gain
            assert result["expected_private"]["reference"] == "single"
            assert result["expected_private"]["averaging_gain"] >= 0
            run_dir = Path(json.loads(Path(result["record"]).read_text())["run_dir"])
            assert (run_dir / "seed0" / "fold0" / "epochs.csv").is_file()
        else:
            assert len(result["pseudo_label"]["n_pseudo_per_fold"]) == 3


def test_bad_box_options_are_refused_before_any_data_work(env, capsys):
    base = ["run", FISHERIES, "--demo", "--demo-preset", "tiny", "--head", "bbox"]
    assert main([*base, "--box-variants", "9"]) == 2
    assert "box_variants must be an integer from 1 to 8" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main([*base, "--box-input-size", "96"])
    assert caught.value.code == 2
    assert main([*base, "--box-input-size", "8x8"]) == 2
    assert "error: --box-input-size (8, 8): input size 8x8 is too small for demo_cnn" in \
        capsys.readouterr().err


def test_unknown_head_loss_or_schedule_lists_the_known_ones(env, capsys):
    for flag, value, known in (("--head", "bbx", "Did you mean: bbox"),
                               ("--loss", "focall", "Did you mean: focal"),
                               ("--schedule", "stepp", "Did you mean: step")):
        assert main(["run", FISHERIES, "--demo", "--demo-preset", "tiny", flag, value]) == 2
        assert known in capsys.readouterr().err
    assert main(["run", FISHERIES, "--demo", "--demo-preset", "tiny", "--mode", "finetune",
                 "--head", "bbox"]) == 2
    assert "--mode finetune trains the base with a dense head" in capsys.readouterr().err
    assert main(["run", FISHERIES, "--demo", "--demo-preset", "tiny", "--mode", "finetune",
                 "--pseudo-label", "0.9"]) == 2
    assert "--mode finetune does not take it" in capsys.readouterr().err
    assert main(["run", FISHERIES, "--demo", "--demo-preset", "tiny", "--pseudo-label",
                 "1.5"]) == 2
    assert "pseudo_label must be a probability threshold in [0.5, 1)" in \
        capsys.readouterr().err


def test_metadata_columns_are_checked_before_any_data_work(env, capsys):
    base = ["run", FISHERIES, "--demo", "--demo-preset", "tiny", "--head", "metadata-merge"]
    assert main([*base, "--metadata", "size,label"]) == 2
    assert "--metadata cannot use 'label': it is the target" in capsys.readouterr().err
    assert main([*base, "--metadata", "boat"]) == 2
    assert ("metadata columns ['boat'] are not in the image table; choose from size, path"
            in capsys.readouterr().err)


@pytest.mark.slow
def test_a_box_head_on_data_without_box_files_names_the_folder(env, fish_layout, capsys):
    code = main(["run", FISHERIES, "--data", str(fish_layout), "--backbone", "demo_cnn",
                 "--weights", "none", "--input-size", "32x32", "--folds", "2", "--epochs", "1",
                 "--tta", "1", "--head", "bbox"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{fish_layout / 'annotations'} holds none for these training images" in err
    assert "<class>_labels.json" in err


# ---------------------------------------------------------------- errors: the user's or a bug


def test_a_bug_prints_its_traceback_and_exits_1_not_an_error_line(tmp_path: Path):
    """Only the kit's own KitError becomes `error:` with exit 2; anything else is a bug."""
    code = ("import sys\nimport kit.cli.score as score\n"
            "def broken(args):\n    return {}['no such key']\n"
            "score.cmd_score = broken\nfrom kit.cli.main import main\n"
            "sys.exit(main(['score', 'fisheries', 'x.csv', '--solution', 'y.csv']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "KeyError: 'no such key'" in done.stderr and "error:" not in done.stderr


def test_a_user_error_is_one_line_with_exit_2(env, capsys):
    assert main(["score", FISHERIES, "nope.csv"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no solution file") and "Traceback" not in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("flag,value,message", [
    ("--folds", "1", "error: --folds 1: folds must be an integer >= 2 (K-fold needs at least "
                     "two folds); received folds=1"),
    ("--folds", "0", "error: --folds 0: folds must be an integer >= 2"),
    ("--seed", "-1", "error: --seed -1: seed must be an integer from 0 to 4294967295; "
                     "received seed=-1"),
    ("--tta", "9", "error: --tta 9: tta must be an integer from 1 to 8"),
    ("--epochs", "0", "error: --epochs 0: epochs must be an integer >= 1"),
    ("--dropout", "1.5", "error: --dropout 1.5: dropout must be a number in [0, 1)"),
    ("--pooling", "mean", "error: --pooling mean: pooling must be one of flatten, avg, max"),
    ("--mode", "train", "error: --mode train: mode must be one of features, finetune"),
])
def test_options_are_checked_before_any_data_work_naming_the_flag(env, capsys, tmp_path, flag,
                                                                  value, message):
    assert main(["run", FISHERIES, "--data", str(tmp_path), flag, value]) == 2
    assert capsys.readouterr().err.startswith(message)
    assert list(tmp_path.iterdir()) == []  # no data work: the (empty) folder was never read


@pytest.mark.slow
def test_allow_missing_classes_trains_and_the_column_gets_the_smoothed_prior(env, fish_layout,
                                                                             tmp_path: Path):
    import shutil

    shutil.rmtree(fish_layout / "train" / "SHARK")
    base = ["run", FISHERIES, "--data", str(fish_layout), "--backbone", "demo_cnn", "--weights",
            "none", "--input-size", "32x32", "--folds", "2", "--epochs", "1", "--tta", "1"]
    assert main(base) == 2
    out = tmp_path / "run.json"
    assert main([*base, "--allow-missing-classes", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    submission = pd.read_csv(summary["submission"])
    smoothed = max(1 / (14 + 8), summary["clip"])  # add-one prior, then the chosen clip
    assert submission["SHARK"].round(6).unique().tolist() == [round(smoothed, 6)]


@pytest.mark.slow
def test_ctrl_c_leaves_no_temporary_file_and_says_how_to_resume(env, tmp_path: Path,
                                                                shared_work: Path):
    """A real SIGINT in the middle of the folds: exit 130, no hidden file anywhere. Per-fold
    training: the fused path finishes every fold at once, so fold 0's done.json would race the
    run's end."""
    args = ["run", FISHERIES, *FAST, "--tta", "1", "--epochs", "30", "--patience", "30",
            "--seed", "7", "--training", "per-fold"]
    # The child starts with Python's own SIGINT handler even if something earlier in the test
    # session left SIGINT ignored in this process (an ignored signal is inherited across exec:
    # the clean-clone CI run once saw the child finish with 0 after the SIGINT).
    proc = subprocess.Popen([sys.executable, "-m", "kit", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not list(shared_work.glob("runs/fisheries/*/seed7/fold0/done.json")):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (signal.getsignal(signal.SIGINT), err[-2000:])
    assert "interrupted: finished folds and cached features are kept" in err
    hidden = [p for root in (shared_work, tmp_path) for p in root.rglob(".*")
              if p.name.endswith((".tmp", ".pending")) or ".tmp." in p.name]
    assert hidden == []
