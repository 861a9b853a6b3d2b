"""Every folder under competitions/: it loads, its tiny demo runs end to end through the real CLI,
and its Kaggle kernel runs offline on that competition's layout and writes a submission that
scores. A new folder is tested by being added."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kit.cli.main import main
from kit.competition import load_competition
from tests.conftest import REPO

FOLDERS = sorted(p.name for p in (REPO / "competitions").iterdir()
                 if (p / "competition.py").is_file())
FAST = ["--demo-preset", "tiny", "--folds", "3", "--epochs", "4", "--tta", "1"]
KERNEL = ["--backbone", "demo_cnn", "--weights", "none", "--input-size", "32x32", "--epochs", "2",
          "--tta", "1"]


def test_there_are_the_five_competitions():
    assert {"fisheries", "dogs-vs-cats-redux", "state-farm", "dog-breed",
            "plant-seedlings"} <= set(FOLDERS)


@pytest.mark.parametrize("name", FOLDERS)
def test_every_folder_loads_with_a_demo_and_a_demo_recipe(name: str):
    competition = load_competition(REPO / "competitions" / name)
    assert competition.name == name and competition.demo is not None
    assert competition.recipe_for(demo=True).weights == "demo"
    assert (REPO / "competitions" / name / "README.md").is_file()


@pytest.fixture(scope="module")
def shared_work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest.mark.slow
@pytest.mark.parametrize("name", FOLDERS)
def test_the_tiny_demo_runs_end_to_end_through_the_cli(
        name: str, shared_work: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("KIT_WORK_DIR", str(shared_work))
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "submissions"))
    out = tmp_path / "run.json"
    assert main(["run", name, "--demo", *FAST, "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    competition = load_competition(name)
    assert summary["metric"] == competition.metric
    submission = pd.read_csv(summary["submission"])
    assert list(submission.columns) == [competition.submission.id_column,
                                        *competition.submission_columns()]
    score = summary["local_score"]
    assert score["metric"] == competition.metric and score["public"] is not None


def _kernel_words(name: str) -> list[str]:
    competition = load_competition(name)
    folds = ["--folds", "group"] if competition.groups is not None else ["--folds", "3"]
    return [*KERNEL, *folds]


@pytest.mark.slow
@pytest.mark.parametrize("name", FOLDERS)
def test_the_kernel_runs_offline_on_the_competitions_layout_and_its_output_scores(
        name: str, tmp_path: Path, monkeypatch):
    competition = load_competition(name)
    data = tmp_path / "demo"
    assert main(["demo", name, "--out", str(data), "--preset", "tiny"]) == 0
    slug = tmp_path / "input" / competition.slug
    shutil.copytree(data, slug, ignore=shutil.ignore_patterns("solution.csv", "demo_meta.csv"))
    monkeypatch.setenv("KIT_WORK_DIR", str(tmp_path / "build-work"))
    assert main(["kernel", name, "--out", str(tmp_path / "kernel"), "--id",
                 f"ann/kit-{name}", *_kernel_words(name)]) == 0
    script = next((tmp_path / "kernel").glob("kit_*.py"))
    env = {**os.environ, "KIT_KAGGLE_INPUT": str(tmp_path / "input"),
           "KIT_KAGGLE_WORKING": str(tmp_path / "working"), "KIT_WORK_DIR": str(tmp_path / "w"),
           "TMPDIR": str(tmp_path), "KIT_OFFLINE": "1"}
    env.pop("KIT_SUBMISSIONS_DIR", None)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    submission = tmp_path / "working" / "submission.csv"
    record = json.loads((tmp_path / "working" / "submission.json").read_text())
    if competition.groups is not None:  # the kernel carried the declared groups
        assert record["config"]["groups_declared"] is True
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "submissions"))
    out = tmp_path / "score.json"
    assert main(["score", name, str(submission), "--solution", str(data / "solution.csv"),
                 "--json", str(out)]) == 0
    score = json.loads(out.read_text())
    assert score["metric"] == competition.metric and score["public"] is not None
