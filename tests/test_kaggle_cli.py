"""The `download`, `submit`, `leaderboard` and `kernel` commands, with the Kaggle API faked."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.cli import submit as submit_cli
from kit.cli.main import main
from kit.competition import load_competition
from kit.kaggle import client as kaggle
from kit.kaggle.client import KaggleClient, find_credentials
from kit.runs.record import RunRecord
from tests.conftest import REPO
from tests.test_kaggle import SECRET, FakeKaggleApi

FISHERIES = str(REPO / "competitions" / "fisheries")
FISH = load_competition(FISHERIES)
TINY = ["--demo", "--demo-preset", "tiny"]


@pytest.fixture(scope="module")
def shared_work(tmp_path_factory) -> Path:
    """The tiny demo data is generated once per module."""
    return tmp_path_factory.mktemp("work")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, shared_work: Path, monkeypatch) -> None:
    """No real credentials, and every file the commands write stays under tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIT_WORK_DIR", str(shared_work))
    monkeypatch.setenv("KIT_SUBMISSIONS_DIR", str(tmp_path / "submissions"))
    monkeypatch.chdir(tmp_path)


def _fake(monkeypatch, api: FakeKaggleApi) -> FakeKaggleApi:
    """`kit.kaggle.client.connect` hands out a client on the fake (with the credentials it finds)."""
    monkeypatch.setattr(kaggle, "connect",
                        lambda warn=None, **kw: KaggleClient(api, credentials=find_credentials()))
    return api


def _demo_root(shared_work: Path) -> Path:
    from kit.core.paths import Paths
    from kit.demo.cache import ensure_demo_data

    return ensure_demo_data(FISH, Paths.from_options(work=shared_work), preset="tiny")


def _submission(root: Path, run_id: str, *, sharp: float, cv: float) -> Path:
    """A submission scoring better with larger `sharp`, with a run record like `kit run`'s."""
    solution = pd.read_csv(root / "solution.csv")
    truth = solution[list(FISH.classes)].to_numpy()
    probs = np.full(truth.shape, 1.0) + sharp * truth
    if sharp < 0:  # a leaky model: good on the public rows, bad on the private ones
        public = (solution["Usage"] == "Public").to_numpy()[:, None]
        probs = np.where(public, 1.0 + 6 * truth, 1.0 + 6 * (1 - truth))
    probs = probs / probs.sum(axis=1, keepdims=True)
    frame = pd.DataFrame({"image": solution["image"],
                          **{c: probs[:, i] for i, c in enumerate(FISH.classes)}})
    path = Path.cwd() / "submissions" / "fisheries" / f"{run_id}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    RunRecord(
        competition="fisheries", run_id=run_id, run_dir=str(path.parent / run_id),
        created=f"2024-01-0{len(run_id) % 9 + 1}T00:00:00+00:00", cv_log_loss=cv,
        config={"recipe": {"backbone": "demo_cnn", "weights": "demo", "head": "dense",
                           "pooling": "max", "folds": 5, "tta": 2, "seed": 0},
                "input_size": [64, 64]}).write(path.with_suffix(".json"))
    return path


# ---------------------------------------------------------------- download


def _competition_zip(root: Path, out: Path) -> Path:
    """`root` (a dataset folder) zipped the way Kaggle ships it: inner train and test zips."""
    def inner(folder: str) -> bytes:
        import io

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for file in sorted((root / folder).rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(root).as_posix())
        return buffer.getvalue()

    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("train.zip", inner("train"))
        archive.writestr("test_stg1.zip", inner("test_stg1"))
        archive.writestr("test_stg2.zip", inner("test_stg2"))
        for sample in ("sample_submission_stg1.csv", "sample_submission_stg2.csv"):
            archive.write(root / sample, sample)
    return out


def test_download_from_archives_given_by_hand(fish_layout: Path, tmp_path: Path) -> None:
    archive = _competition_zip(fish_layout, tmp_path / "fisheries.zip")
    out = tmp_path / "download.json"
    target = tmp_path / "data"
    assert main(["download", FISHERIES, "--archive", str(archive), "--data", str(target),
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["layout_ok"] and result["source"] == "archives given"
    assert result["files"] == 16 + 3 + 2 and not result["skipped"]
    assert (target / "train" / "ALB").is_dir() and (target / "test_stg2").is_dir()
    assert main(["download", FISHERIES, "--archive", str(archive), "--data", str(target),
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["skipped"]
    # the extracted folder is a dataset `kit run --data` reads
    from kit.data.layout import read_layout

    assert len(read_layout(FISH, target).test) == 3


def test_download_through_the_api_lands_where_run_looks(fish_layout: Path, tmp_path: Path,
                                                        monkeypatch, capsys) -> None:
    archive = _competition_zip(fish_layout, tmp_path / "x.zip")
    members = {}
    with zipfile.ZipFile(archive) as handle:
        for name in handle.namelist():
            members[name] = handle.read(name)
    fake = _fake(monkeypatch, FakeKaggleApi(members=members))
    monkeypatch.setenv("KIT_WORK_DIR", str(tmp_path / "work"))
    assert main(["download", FISHERIES]) == 0
    assert fake.calls[0][:2] == ("competition_download_files", FISH.slug)
    assert fake.calls[0][2] == str(tmp_path / "work" / "downloads" / "fisheries")
    assert (tmp_path / "work" / "data" / "fisheries" / "train" / "NoF").is_dir()
    assert "files" in capsys.readouterr().out


def test_download_without_credentials_names_the_ways(capsys) -> None:
    assert main(["download", FISHERIES]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no Kaggle credentials found.")
    assert "kaggle.json" in err and "KAGGLE_USERNAME" in err and "--archive FILE" in err


def test_credentials_never_reach_the_terminal(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", "ann")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    _fake(monkeypatch, FakeKaggleApi(fail=PermissionError(
        f"403 Forbidden: user=ann key={SECRET} has not accepted the rules")))
    assert main(["download", FISHERIES, "--data", str(tmp_path / "d")]) == 2
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    assert "error: Kaggle API: downloading competition" in captured.err and "403" in captured.err


def test_a_credentials_file_readable_by_others_is_warned_about(monkeypatch, capsys,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "home" / ".kaggle" / "kaggle.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"username": "ann", "key": SECRET}))
    path.chmod(0o644)
    monkeypatch.setenv("KIT_OFFLINE", "1")
    assert main(["download", FISHERIES, "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert f"warning: the Kaggle credentials file {path} is readable by other users" in err
    assert "KIT_OFFLINE is set" in err and SECRET not in err


def test_a_hostile_archive_is_refused_with_the_member_named(tmp_path: Path, capsys) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("train/ALB/ok.jpg", b"x")
        archive.writestr("../../outside.txt", b"pwned")
    assert main(["download", FISHERIES, "--archive", str(evil), "--data",
                 str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: archive evil.zip refused: member '../../outside.txt' has a "
                          "'..' component")
    assert not (tmp_path / "data").exists() and not list(tmp_path.parent.glob("outside.txt"))


# ---------------------------------------------------------------- score and leaderboard


def test_the_leaderboard_ranks_the_demo_runs(shared_work: Path, tmp_path: Path, capsys) -> None:
    root = _demo_root(shared_work)
    runs = {"20240101-000000-leaky": (-1.0, 0.41), "20240102-000000-sharp": (6.0, 0.50),
            "20240103-000000-blunt": (1.0, 0.90)}
    for run_id, (sharp, cv) in runs.items():
        assert main(["score", FISHERIES, str(_submission(root, run_id, sharp=sharp, cv=cv)),
                     *TINY]) == 0
    capsys.readouterr()
    out = tmp_path / "board.json"
    assert main(["leaderboard", FISHERIES, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    board = json.loads(out.read_text())
    assert [e["run_id"] for e in board] == ["20240101-000000-leaky", "20240102-000000-sharp",
                                            "20240103-000000-blunt"]
    for entry in board:
        assert {"run_id", "cv_log_loss", "public", "private", "private_rank", "shake_up",
                "recipe", "date"} <= set(entry)
        assert entry["cv_log_loss"] == runs[entry["run_id"]][1]
        assert entry["public"] is not None and entry["private"] is not None
    leaky = board[0]
    assert (leaky["public_rank"], leaky["private_rank"], leaky["shake_up"]) == (1, 3, -2)
    assert "20240101-000000-leaky" in table and "shake" in table and "-2" in table
    assert (tmp_path / "submissions" / "leaderboard.sqlite").is_file()


def test_a_bad_submission_is_refused_by_score_and_not_recorded(shared_work: Path, tmp_path: Path,
                                                               capsys) -> None:
    root = _demo_root(shared_work)
    path = _submission(root, "broken", sharp=2.0, cv=1.0)
    frame = pd.read_csv(path)
    frame.loc[3, "BET"] = -0.5
    frame.to_csv(path, index=False)
    assert main(["score", FISHERIES, str(path), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: value -0.5 for id {frame.loc[3, 'image']!r} in column "
                          "'BET' is negative")
    assert main(["leaderboard", FISHERIES]) == 0
    assert "no scored submissions" in capsys.readouterr().out


def test_empty_leaderboard_json_is_an_empty_list(tmp_path: Path) -> None:
    assert main(["leaderboard", FISHERIES, "--json", str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text()) == []


# ---------------------------------------------------------------- submit


def test_submit_carries_the_run_id_and_fetches_the_score(shared_work: Path, tmp_path: Path,
                                                         monkeypatch, capsys) -> None:
    root = _demo_root(shared_work)
    path = _submission(root, "20240105-000000-abc", sharp=3.0, cv=0.7)
    fake = _fake(monkeypatch, FakeKaggleApi(scores=[(None, None), ("0.81234", "0.93")]))
    sleeps: list[float] = []
    monkeypatch.setattr(submit_cli, "_sleep", sleeps.append)
    out = tmp_path / "submit.json"
    assert main(["submit", FISHERIES, str(path), "-m", "sharper head", "--wait", "30",
                 "--data", str(root), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["message"] == "[20240105-000000-abc] sharper head"
    assert (result["status"], result["public"], result["private"]) == ("complete", 0.81234, 0.93)
    submit_call = next(c for c in fake.calls if c[0] == "competition_submit")
    assert submit_call == ("competition_submit", str(path), "[20240105-000000-abc] sharper head",
                           FISH.slug, True)
    assert len(sleeps) == 1
    assert "matches sample_submission_stg2.csv" in capsys.readouterr().out
    board_file = tmp_path / "b.json"
    assert main(["leaderboard", FISHERIES, "--json", str(board_file)]) == 0
    (entry,) = json.loads(board_file.read_text())
    assert (entry["public"], entry["private"], entry["score_source"]) == (0.81234, 0.93, "kaggle")
    assert entry["cv_log_loss"] == 0.7 and entry["kaggle_ref"] == 1000


def test_a_pending_score_is_fetched_later(shared_work: Path, tmp_path: Path, monkeypatch,
                                          capsys) -> None:
    root = _demo_root(shared_work)
    path = _submission(root, "20240106-000000-def", sharp=3.0, cv=0.7)
    fake = _fake(monkeypatch, FakeKaggleApi(scores=[(None, None), ("0.7", "0.75")]))
    assert main(["submit", FISHERIES, str(path), "--data", str(root)]) == 0
    assert "Kaggle has no score yet" in capsys.readouterr().out
    out = tmp_path / "b.json"
    assert main(["leaderboard", FISHERIES, "--json", str(out)]) == 0
    assert json.loads(out.read_text())[0]["kaggle_status"] == "pending"
    assert main(["leaderboard", FISHERIES, "--fetch", "--json", str(out)]) == 0
    (entry,) = json.loads(out.read_text())
    assert (entry["kaggle_status"], entry["public"], entry["private"]) == ("complete", 0.7, 0.75)
    assert entry["kaggle_message"].startswith("[20240106-000000-def] demo_cnn(demo) 64x64")
    assert [c[0] for c in fake.calls].count("competition_submissions") == 2


def test_an_invalid_submission_is_never_uploaded(shared_work: Path, monkeypatch,
                                                 capsys) -> None:
    root = _demo_root(shared_work)
    path = _submission(root, "short", sharp=3.0, cv=0.7)
    pd.read_csv(path).iloc[:-1].to_csv(path, index=False)
    fake = _fake(monkeypatch, FakeKaggleApi())
    assert main(["submit", FISHERIES, str(path), "--data", str(root)]) == 2
    assert "has 31 rows but the sample has 32 rows" in capsys.readouterr().err
    assert fake.calls == []


def test_a_failed_upload_leaves_no_entry_and_no_secret(shared_work: Path, monkeypatch,
                                                       capsys) -> None:
    root = _demo_root(shared_work)
    path = _submission(root, "20240107-000000-ghi", sharp=3.0, cv=0.7)
    monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET)
    _fake(monkeypatch, FakeKaggleApi(fail=ConnectionError(f"Authorization: Bearer {SECRET}")))
    assert main(["submit", FISHERIES, str(path), "--data", str(root)]) == 2
    captured = capsys.readouterr()
    assert "error: Kaggle API: submitting" in captured.err and SECRET not in captured.err
    assert main(["leaderboard", FISHERIES]) == 0
    assert "no scored submissions" in capsys.readouterr().out


# ---------------------------------------------------------------- kernel


def test_kernel_push_through_the_api(tmp_path: Path, monkeypatch, capsys) -> None:
    fake = _fake(monkeypatch, FakeKaggleApi())
    out = tmp_path / "kernel.json"
    assert main(["kernel", FISHERIES, "--out", str(tmp_path / "k"), "--id", "ann/kit-fish-vgg",
                 "--dataset-source", "ann/keras-vgg16", "--folds", "3", "--tta", "2", "--push",
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["pushed"]["url"] == "https://www.kaggle.com/code/ann/kit-fish-vgg"
    assert fake.calls == [("kernels_push", str(tmp_path / "k"))]
    assert result["run_args"] == ["--folds", "3", "--tta", "2"]
    assert result["weights_file"] == "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    meta = json.loads((tmp_path / "k" / "kernel-metadata.json").read_text())
    assert (meta["id"], meta["title"], meta["dataset_sources"]) == (
        "ann/kit-fish-vgg", "kit fish vgg", ["ann/keras-vgg16"])


def test_kernel_owner_comes_from_the_credentials(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", "bob")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    assert main(["kernel", FISHERIES, "--out", str(tmp_path / "k"), "--backbone", "demo_cnn",
                 "--weights", "none"]) == 0
    meta = json.loads((tmp_path / "k" / "kernel-metadata.json").read_text())
    assert meta["id"] == "bob/kit-fisheries"
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err + (tmp_path / "k" / "kit_fisheries.py"
                                                        ).read_text()


def test_kernel_without_an_owner(tmp_path: Path, capsys) -> None:
    assert main(["kernel", FISHERIES, "--out", str(tmp_path / "k")]) == 0
    err = capsys.readouterr().err
    assert "replace INSERT_USERNAME" in err and "attach a Kaggle dataset or model" in err
    assert main(["kernel", FISHERIES, "--out", str(tmp_path / "k"), "--push"]) == 2
    assert "--push needs the kernel's owner: pass --id USERNAME/KERNEL-SLUG" in (
        capsys.readouterr().err)


def test_kernel_bakes_in_the_head_and_box_options(tmp_path: Path, capsys) -> None:
    out = tmp_path / "kernel.json"
    assert main(["kernel", FISHERIES, "--out", str(tmp_path / "k"), "--head", "bbox",
                 "--box-input-size", "448x256", "--box-variants", "4", "--fcn-input-size",
                 "640x360", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["run_args"] == [
        "--head", "bbox", "--fcn-input-size", "640x360", "--box-input-size", "448x256",
        "--box-variants", "4"]


def test_kernel_refuses_options_it_cannot_carry(tmp_path: Path, capsys) -> None:
    assert main(["kernel", FISHERIES, "--out", str(tmp_path / "k"), "--folds", "group"]) == 2
    assert "a kernel cannot use --folds group" in capsys.readouterr().err
    assert main(["kernel", FISHERIES, "--backbone", "vgg61"]) == 2
    assert "unknown backbone 'vgg61'. Did you mean: vgg16" in capsys.readouterr().err
