"""kit.app.folding: how `--folds auto` decides from the declaration and the probe's evidence."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kit.app.folding import resolve_folding
from kit.competition import CsvGroups, load_competition
from kit.core.paths import Paths
from kit.probes.evidence import read_evidence

FISH = load_competition("fisheries")
DRIVERS = dataclasses.replace(FISH, groups=CsvGroups(
    file="drivers.csv", group_column="subject", path_template="train/{img}"))
PROBE = "python -m kit probe fisheries --demo"


def _paths(tmp_path: Path) -> Paths:
    return Paths(work=tmp_path / "work", submissions=tmp_path / "subs")


def _probe(tmp_path: Path, *, groups_leak: bool, shift: bool, pairs: int = 0) -> Path:
    folder = _paths(tmp_path).probe_dir("fisheries", tmp_path / "data")
    folder.mkdir(parents=True)
    groups = folder / "groups.csv"
    groups.write_text("path,group\n")
    (folder / "clusters.csv").write_text("path,group\n")
    (folder / "probe.json").write_text(json.dumps({
        "groups": {"leak": groups_leak, "n_groups": 6, "groups_file": str(groups)},
        "adversarial": {"leak": shift, "sources": {"features": {"per_split": {
            "test_stg1": 0.47, "test_stg2": 0.98}}}},
        "duplicates": {"within_train": pairs}}))
    return folder


def _resolve(tmp_path: Path, kind: str, competition=FISH, groups: Path | None = None):
    return resolve_folding(competition, tmp_path / "data", _paths(tmp_path), folding=kind,
                           groups_file=groups, command=PROBE)


def test_forced_kinds_and_a_groups_file(tmp_path: Path):
    assert _resolve(tmp_path, "stratified").to_dict() == {"kind": "stratified",
                                                          "reason": "--folds stratified"}
    folding = _resolve(tmp_path, "auto", groups=tmp_path / "g.csv")
    assert (folding.kind, folding.groups_file) == ("group", tmp_path / "g.csv")
    with pytest.raises(ValueError, match="--groups CSV makes group folds; drop it, or drop "
                                         "--folds stratified"):
        _resolve(tmp_path, "stratified", groups=tmp_path / "g.csv")
    with pytest.raises(ValueError, match=r"--folds group needs groups: fisheries declares none, "
                                         r"and .*groups.csv does not exist: run `python -m kit "
                                         "probe fisheries --demo`"):
        _resolve(tmp_path, "group")


def test_declared_groups_decide_auto_and_group(tmp_path: Path):
    for kind in ("auto", "group"):
        folding = _resolve(tmp_path, kind, competition=DRIVERS)
        assert folding.kind == "group" and folding.groups_declared
        assert folding.groups_file == tmp_path / "data" / "drivers.csv"
        assert "the competition declares groups (drivers.csv, column subject)" in folding.reason


def test_without_a_probe_auto_is_stratified_and_says_what_to_run(tmp_path: Path):
    folding = _resolve(tmp_path, "auto")
    assert folding.kind == "stratified" and folding.groups_file is None
    assert "no probe of this data yet" in folding.reason and PROBE in folding.reason


def test_probe_evidence_decides_auto(tmp_path: Path):
    folder = _probe(tmp_path, groups_leak=True, shift=True)
    folding = _resolve(tmp_path, "auto")
    assert folding.kind == "group" and folding.groups_file == folder / "groups.csv"
    assert "found 6 groups that make stratified CV optimistic" in folding.reason
    assert "test_stg2 0.98" in folding.reason
    evidence = read_evidence(folder)
    assert evidence.split_aucs == {"test_stg1": 0.47, "test_stg2": 0.98}


@pytest.mark.parametrize("groups_leak,shift,pairs,kind,clusters", [
    (True, False, 0, "stratified", False),  # groups, but the test shares them
    (False, True, 0, "stratified", False),  # a shift, but no groups that matter
    (False, False, 12, "stratified", True),  # near-duplicates: kept in one fold each
])
def test_otherwise_stratified_with_duplicates_kept_together(tmp_path, groups_leak, shift, pairs,
                                                            kind, clusters):
    folder = _probe(tmp_path, groups_leak=groups_leak, shift=shift, pairs=pairs)
    folding = _resolve(tmp_path, "auto")
    assert folding.kind == kind
    assert (folding.groups_file == folder / "clusters.csv") is clusters
    if clusters:
        assert "the 12 near-duplicate pairs the probe found inside train kept" in folding.reason
