"""End-to-end: `python -m kit probe` on the tiny demo datasets and on a damaged --data folder."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kit.cli.main import main
from kit.competition import load_competition
from kit.data.folds import assign_folds
from kit.data.layout import read_layout
from kit.probes.evidence import read_evidence
from tests.conftest import REPO

FISHERIES = str(REPO / "competitions" / "fisheries")
CATS = str(REPO / "competitions" / "dogs-vs-cats-redux")
TINY = ["--demo", "--demo-preset", "tiny"]
REQUIRED = {
    "size": ("leak", "mutual_information", "gain_nats", "prior_log_loss", "metadata_log_loss"),
    "duplicates": ("pairs", "cross_split"),
    "groups": ("n_groups",),
    "adversarial": ("auc",),
}


@pytest.fixture(scope="module")
def shared_work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("probe-work")


@pytest.fixture
def env(shared_work: Path, tmp_path: Path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("KIT_WORK_DIR", str(shared_work))
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(shared_work / "submissions"))
    return {**os.environ, "KIT_WORK_DIR": str(shared_work),
            "KIT_SUBMISSIONS_DIR": str(shared_work / "submissions")}


@pytest.mark.slow
def test_probe_after_a_run_reports_every_probe_and_writes_groups(env, tmp_path: Path, capsys):
    assert main(["run", FISHERIES, *TINY, "--folds", "3", "--epochs", "3", "--tta", "1"]) == 0
    capsys.readouterr()
    out = tmp_path / "probe.json"
    assert main(["probe", FISHERIES, *TINY, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for probe in ("size", "duplicates", "groups", "adversarial", "attention"):
        assert probe in printed
    data = json.loads(out.read_text())
    for section, keys in REQUIRED.items():
        for key in keys:
            assert key in data[section], f"{section}.{key}"
    assert isinstance(data["size"]["leak"], bool)
    assert data["adversarial"]["feature_source"].startswith("cached features of run")
    attention = data["attention"]
    assert attention["status"] == "measured" and set(attention["per_class"]) <= {
        "ALB", "BET", "DOL", "LAG", "SHARK", "YFT"}
    assert 0 <= attention["share"] <= 1 and 0 < attention["chance"] < 1
    assert data["groups"]["n_groups"] == 6  # the tiny demo's six boats
    assert data["groups"]["agreement_with_true_groups"] == pytest.approx(1.0)
    groups = pd.read_csv(data["groups"]["groups_file"])
    assert len(groups) == 48 and groups["path"].str.startswith("train/").all()
    assert json.loads((Path(data["report"]).parent / "probe.json").read_text()) == data
    report = Path(data["report"]).read_text()
    assert report.startswith("# Leakage report: fisheries") and "## 5. Attention" in report

    # What `run --folds group` does with the file (a real run of it costs 5 head fits; the
    # full demo's figures are in the README): group K-fold over the image table's paths.
    competition = load_competition("fisheries")
    train = read_layout(competition, Path(data["data_root"])).train
    group_of = dict(zip(groups["path"], groups["group"], strict=True))
    folds = assign_folds(list(train["label"]), n_splits=5, seed=0,
                         groups=[group_of[p] for p in train["path"]])
    assert len(set(folds.tolist())) == 5


def _copy_of(image_file: Path) -> bytes:
    """A near-duplicate: downscaled to 80 %, 6 % brighter, JPEG quality 75."""
    with Image.open(image_file) as img:
        rgb = img.convert("RGB")
        small = rgb.resize((round(rgb.width * 0.8), round(rgb.height * 0.8)))
    brighter = np.clip(np.asarray(small, np.float32) * 1.06, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(brighter).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


@pytest.mark.slow
def test_data_folder_with_unreadable_images_and_a_planted_duplicate(env, tmp_path: Path):
    data = tmp_path / "data"
    assert main(["demo", FISHERIES, "--out", str(data), "--preset", "tiny", "--seed", "3"]) == 0
    empty = sorted((data / "train" / "ALB").glob("*.jpg"))[0]
    empty.write_bytes(b"")
    stg1 = sorted((data / "test_stg1").glob("*.jpg"))
    stg1[0].write_bytes(stg1[0].read_bytes()[:200])  # truncated
    original = sorted((data / "train" / "YFT").glob("*.jpg"))[0]
    stg1[1].write_bytes(_copy_of(original))
    out = tmp_path / "probe.json"
    proc = subprocess.run(
        [sys.executable, "-m", "kit", "probe", FISHERIES, "--data", str(data), "--json", str(out),
         "--fail-on-leak", "--no-attention"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    unreadable = {u["path"]: u["reason"] for u in result["unreadable"]}
    assert unreadable[empty.relative_to(data).as_posix()] == "empty file"
    assert unreadable[stg1[0].relative_to(data).as_posix()].startswith("truncated or corrupt")
    pair = [original.relative_to(data).as_posix(), stg1[1].relative_to(data).as_posix()]
    assert [p[:2] for p in result["duplicates"]["pairs"]] == [pair]
    assert result["duplicates"]["cross_split"] == 1 and result["leaks"]["duplicates"]
    assert result["adversarial"]["feature_source"].startswith("image statistics")
    assert "unreadable images (2)" in proc.stdout


def test_dogs_vs_cats_demo_has_no_size_leak(env, tmp_path: Path):
    out = tmp_path / "probe.json"
    assert main(["probe", CATS, *TINY, "--json", str(out), "--no-attention"]) == 0
    data = json.loads(out.read_text())
    assert data["size"]["leak"] is False
    assert data["groups"]["leak"] is False and data["duplicates"]["leak"] is False
    assert data["attention"]["status"] == "skipped"


def _demo_recipe_words(name: str) -> list[str]:
    """`run` options that make a run on `--data DIR` use the competition's demo recipe."""
    r = load_competition(name).recipe_for(demo=True)
    size = f"{r.input_size[0]}x{r.input_size[1]}"
    return ["--backbone", r.backbone, "--weights", r.weights, "--input-size", size,
            "--head", r.head, "--pooling", r.pooling, "--hidden", str(r.hidden),
            "--dropout", str(r.dropout), "--tta", str(r.tta), "--epochs", str(r.epochs),
            "--patience", str(r.patience), "--batch-size", str(r.batch_size),
            "--learning-rate", str(r.learning_rate)]


# What each full demo's probe must say after a stratified run with the demo recipe: the leak
# that each demo was built with, judged by the run's own head (a dataset of each kind: people,
# boats, and none).
DEMO_VERDICTS = {
    "state-farm": {"groups": True, "duplicates": True},
    "fisheries": {"groups": True},
    "dogs-vs-cats-redux": {"groups": False, "duplicates": False},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEMO_VERDICTS))
def test_probe_verdicts_on_the_demos_are_judged_by_the_runs_head(name: str, env,
                                                                 tmp_path: Path):
    data = tmp_path / "data"
    assert main(["demo", name, "--out", str(data)]) == 0
    assert main(["run", name, "--data", str(data), *_demo_recipe_words(name),
                 "--folds", "stratified"]) == 0
    out = tmp_path / "probe.json"
    proc = subprocess.run(
        [sys.executable, "-m", "kit", "probe", name, "--data", str(data), "--no-attention",
         "--json", str(out)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    fixes = {"groups": "`run --folds group`",
             "duplicates": "`run --folds auto` keeps duplicate clusters together"}
    for probe, leak in DEMO_VERDICTS[name].items():
        section = result[probe]
        assert section["leak"] is leak, section["verdict"]
        if section["comparison"] is not None:
            assert section["comparison"]["model_kind"] == "run_head"
            assert section["comparison"]["feature_source"].startswith("cached features of run")
        if leak:
            assert section["verdict"].startswith("LEAK") and fixes[probe] in section["verdict"]
            assert section["fix"].startswith(fixes[probe])
            assert section["comparison"]["optimism"]["low"] > 0
            assert any(line.startswith(probe) and "LEAK, fix: " in line
                       for line in proc.stdout.splitlines())
    if name == "state-farm":  # the declared drivers are the truth; run --folds auto reads it
        assert result["groups"]["grouping"] == "declared"
        assert "declared groups (driver_imgs_list.csv" in result["groups"]["comparison"][
            "grouping"]
        assert result["duplicates"]["clusters"]["straddling_share"] > 0.5
        evidence = read_evidence(Path(result["report"]).parent)
        assert evidence.groups_leak and evidence.within_train_pairs > 0
        assert evidence.clusters_file is not None


def test_bad_options_exit_2_with_the_fix(env, capsys):
    assert main(["probe", FISHERIES, *TINY, "--alpha", "2"]) == 2
    assert "alpha must be a significance level strictly between 0 and 1" in capsys.readouterr().err
    assert main(["probe", FISHERIES, *TINY, "--run", "no-such-run"]) == 2
    assert "no run record no-such-run.json" in capsys.readouterr().err
