"""Tests for kit.kaggle.kernel: metadata, the bundle, data and weights lookup, and the script end to end.

The end-to-end test builds the kernel from the tiny fisheries demo, runs the generated script
with a fake `/kaggle/input` (`KIT_KAGGLE_INPUT`) and `/kaggle/working` (`KIT_KAGGLE_WORKING`),
and scores what it wrote with `kit score`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from kit.cli.main import main
from kit.competition import load_competition
from kit.kaggle.kernel import (
    KernelInputError,
    KernelSpec,
    build_kernel,
    bundle_zip,
    find_weights,
    metadata,
    prepare_data,
    recipe_weights_file,
    slugify,
    weights_args,
)
from tests.conftest import REPO

FISHERIES = REPO / "competitions" / "fisheries"
FISH = load_competition(FISHERIES)
SLUG = FISH.slug
VGG_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
SMALL = ["--backbone", "demo_cnn", "--weights", "none", "--input-size", "32x32", "--folds", "3",
         "--epochs", "2", "--tta", "1"]


def _spec(**changes) -> KernelSpec:
    fields = {"competition": FISH, "competition_folder": FISHERIES,
              "kernel_id": "ann/kit-fisheries", "title": "kit fisheries"}
    return KernelSpec(**{**fields, **changes})


def _parsed(**values) -> argparse.Namespace:
    return argparse.Namespace(**{"backbone": None, "weights": None, **values})


# ---------------------------------------------------------------- metadata and bundle


def test_metadata_has_what_kaggle_reads() -> None:
    meta = metadata(_spec(dataset_sources=("ann/keras-weights",),
                          model_sources=("keras/vgg16/keras/notop/1",)))
    assert meta == {
        "id": "ann/kit-fisheries", "title": "kit fisheries", "code_file": "kit_fisheries.py",
        "language": "python", "kernel_type": "script", "is_private": True, "enable_gpu": True,
        "enable_tpu": False, "enable_internet": False,
        "dataset_sources": ["ann/keras-weights"], "competition_sources": [SLUG],
        "kernel_sources": [], "model_sources": ["keras/vgg16/keras/notop/1"],
    }
    assert metadata(_spec(private=False, gpu=False))["is_private"] is False
    assert _spec(competition=load_competition("dogs-vs-cats-redux"),
                 competition_folder=REPO / "competitions" / "dogs-vs-cats-redux"
                 ).code_file == "kit_dogs_vs_cats_redux.py"


@pytest.mark.parametrize(("changes", "message"), [
    ({"kernel_id": "kit-fisheries"}, r"kernel id must look like owner/kernel-slug .*received "
                                     r"id='kit-fisheries'\. Pass --id USERNAME/kit-fisheries"),
    ({"kernel_id": "ann/Kit Fisheries"}, r"kernel id must look like owner/kernel-slug"),
    ({"title": "kit"}, r"kernel title must have at least 5 characters .*received title='kit'"),
    ({"dataset_sources": ("weights",)}, r"dataset source must look like owner/dataset-slug; "
                                        r"received 'weights'"),
    ({"model_sources": ("keras/vgg16",)}, r"model source must look like "
                                          r"owner/model/framework/variation\[/version\]"),
    ({"competition_folder": REPO}, r"has no competition\.py"),
])
def test_spec_errors(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**changes)


def test_slugify() -> None:
    assert slugify("kit fisheries") == "kit-fisheries"
    assert slugify("  VGG16 + TTA, 5 folds! ") == "vgg16-tta-5-folds"


def test_bundle_carries_the_kit_and_the_competition_and_is_deterministic() -> None:
    first, second = bundle_zip(FISHERIES), bundle_zip(FISHERIES)
    assert first == second
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    for wanted in ("kit/__init__.py", "kit/cli/main.py", "kit/cli/kernel.py",
                   "kit/kaggle/kernel.py", "kit/kaggle/archives.py",
                   "kit/demo/fisheries.py", "competitions/fisheries/competition.py"):
        assert wanted in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_build_writes_the_folder(tmp_path: Path) -> None:
    bundle = build_kernel(_spec(run_args=tuple(SMALL)), tmp_path / "kernel")
    assert sorted(p.name for p in (tmp_path / "kernel").iterdir()) == ["kernel-metadata.json",
                                                                      "kit_fisheries.py"]
    meta = json.loads(bundle.metadata.read_text())
    assert meta["code_file"] == bundle.script.name
    script = bundle.script.read_text()
    assert '"run_args": ["--backbone", "demo_cnn", "--weights", "none"' in script
    compile(script, str(bundle.script), "exec")
    assert bundle.to_dict()["run_args"] == SMALL
    with pytest.raises(ValueError, match=r"is a file; pass a folder"):
        build_kernel(_spec(), bundle.script)


# ---------------------------------------------------------------- weights


def test_weights_file_follows_the_recipe() -> None:
    assert recipe_weights_file(FISH, _parsed()) == VGG_FILE  # the real recipe: vgg16, imagenet
    assert recipe_weights_file(FISH, _parsed(backbone="resnet50")) == (
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert recipe_weights_file(FISH, _parsed(backbone="demo_cnn", weights="none")) is None
    assert recipe_weights_file(FISH, _parsed(weights="demo")) is None
    assert recipe_weights_file(FISH, _parsed(weights="/home/ann/my-vgg.h5")) == "my-vgg.h5"
    with pytest.raises(ValueError, match=r"backbone demo_cnn has no ImageNet weights"):
        recipe_weights_file(FISH, _parsed(backbone="demo_cnn", weights="imagenet"))


def test_weights_are_found_in_an_attached_dataset_and_passed(tmp_path: Path) -> None:
    data = tmp_path / "input" / SLUG
    (data / "train").mkdir(parents=True)
    (data / "train" / VGG_FILE).write_bytes(b"decoy inside the competition data")
    weights = tmp_path / "input" / "keras-weights" / "v1" / VGG_FILE
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"h5")
    assert find_weights(tmp_path / "input", VGG_FILE, skip=data) == weights
    config = {"run_args": ["--weights", "imagenet", "--folds", "3"], "weights_file": VGG_FILE}
    args = weights_args(config, tmp_path / "input", data, log=lambda _: None)
    assert args == ["--folds", "3", "--weights", str(weights)]


def test_missing_weights_say_what_to_attach(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("kit.features.backbones.keras_cache_candidates",
                        lambda name: (tmp_path / "keras" / "models" / name,))
    (tmp_path / "input" / SLUG / "train").mkdir(parents=True)
    config = {"run_args": [], "weights_file": VGG_FILE, "dataset_sources": [],
              "model_sources": ["keras/vgg16/keras/notop/1"]}
    with pytest.raises(KernelInputError,
                       match=rf"weights file {VGG_FILE} not found under .*input\. Kaggle kernels "
                             r"run with the internet off, so Keras cannot download ImageNet "
                             r"weights: attach a Kaggle dataset or model holding that file "
                             r"\(this kernel's sources: datasets none, models "
                             r"\['keras/vgg16/keras/notop/1'\]"):
        weights_args(config, tmp_path / "input", tmp_path / "input" / SLUG, log=print)


# ---------------------------------------------------------------- competition data


def test_data_folder_is_used_as_it_is(tmp_path: Path) -> None:
    data = tmp_path / "input" / SLUG
    (data / "train").mkdir(parents=True)
    assert prepare_data(tmp_path / "input", SLUG, FISH, tmp_path / "scratch") == data


def test_archives_in_the_input_are_extracted(tmp_path: Path) -> None:
    data = tmp_path / "input" / SLUG
    data.mkdir(parents=True)
    with zipfile.ZipFile(data / "train.zip", "w") as archive:
        archive.writestr("train/ALB/img_1.jpg", b"x")
    with zipfile.ZipFile(data / "sample_submission_stg1.csv.zip", "w") as archive:
        archive.writestr("sample_submission_stg1.csv", b"image,ALB\n")
    lines: list[str] = []
    out = prepare_data(tmp_path / "input", SLUG, FISH, tmp_path / "scratch" / "data",
                       log=lines.append)
    assert out == tmp_path / "scratch" / "data"
    assert (out / "train" / "ALB" / "img_1.jpg").is_file()
    assert (out / "sample_submission_stg1.csv").is_file()
    assert lines[0].startswith("extracting sample_submission_stg1.csv.zip, train.zip into ")


def test_missing_competition_data_is_named(tmp_path: Path) -> None:
    (tmp_path / "input" / "some-dataset").mkdir(parents=True)
    with pytest.raises(KernelInputError,
                       match=rf"competition data not found at .*input/{SLUG}: attach the "
                             rf"competition {SLUG} to the kernel \(competition_sources in "
                             r"kernel-metadata\.json\); .*input holds \['some-dataset'\]"):
        prepare_data(tmp_path / "input", SLUG, FISH, tmp_path / "scratch")
    (tmp_path / "input" / SLUG).mkdir()
    with pytest.raises(KernelInputError, match=r"holds neither a train/ folder nor archives"):
        prepare_data(tmp_path / "input", SLUG, FISH, tmp_path / "scratch")


# ---------------------------------------------------------------- the script, end to end


def _script_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "KIT_KAGGLE_INPUT": str(tmp_path / "input"),
           "KIT_KAGGLE_WORKING": str(tmp_path / "working"), "KIT_WORK_DIR": str(tmp_path / "work"),
           "TMPDIR": str(tmp_path / "tmp"), "KERAS_HOME": str(tmp_path / "keras"),
           "KIT_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("KIT_SUBMISSIONS_DIR", None)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return env


def test_script_without_weights_stops_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "input" / SLUG / "train").mkdir(parents=True)
    bundle = build_kernel(_spec(weights_file=VGG_FILE), tmp_path / "kernel")
    proc = subprocess.run([sys.executable, str(bundle.script)], env=_script_env(tmp_path),
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"error: weights file {VGG_FILE} not found under "
                                  f"{tmp_path / 'input'}. Kaggle kernels run with the internet off")
    assert not (tmp_path / "working" / "submission.csv").exists()


@pytest.mark.slow
def test_kernel_built_from_the_tiny_demo_runs_end_to_end(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "demo"
    assert main(["demo", str(FISHERIES), "--out", str(data), "--preset", "tiny"]) == 0
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / SLUG).symlink_to(data, target_is_directory=True)
    monkeypatch.setenv("KIT_WORK_DIR", str(tmp_path / "build-work"))
    assert main(["kernel", str(FISHERIES), "--out", str(tmp_path / "kernel"), "--id",
                 "ann/kit-fisheries", *SMALL]) == 0
    script = tmp_path / "kernel" / "kit_fisheries.py"

    proc = subprocess.run([sys.executable, str(script)], env=_script_env(tmp_path),
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert f"from {tmp_path / 'tmp'}/kit-bundle-" in proc.stdout  # the kit inside the script ran
    assert "--backbone demo_cnn --weights none --input-size 32x32 --folds 3" in proc.stdout
    submission = tmp_path / "working" / "submission.csv"
    frame = pd.read_csv(submission)
    assert list(frame.columns) == ["image", *FISH.classes] and len(frame) == 32
    record = json.loads((tmp_path / "working" / "submission.json").read_text())
    assert record["config"]["recipe"]["folds"] == 3

    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "submissions"))
    out = tmp_path / "score.json"
    assert main(["score", str(FISHERIES), str(submission), "--solution",
                 str(data / "solution.csv"), "--json", str(out)]) == 0
    score = json.loads(out.read_text())
    assert score["n_rows"] == 32 and score["public"] is not None and score["private"] is not None
