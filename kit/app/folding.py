"""How a run folds its training images, decided from evidence (`--folds auto`, the default).

    --folds stratified    seeded stratified K-fold
    --folds group         group K-fold over the competition's declared groups, else over the
                          groups `kit probe` inferred on this data (an error without either)
    --groups CSV          group K-fold over a `path,group` file
    --folds auto          group folds when the competition declares groups (the person in State
                          Farm), or when a probe of this data found groups that make stratified
                          CV optimistic and a test set that looks unlike train (new boats);
                          otherwise stratified, with the near-duplicate clusters the probe found
                          inside train kept in one fold; without a probe, stratified, and the
                          run says which command to run first

Every run prints its choice and why, and records it (`folds.kind`, `folds.reason`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kit.competition import Competition
from kit.core.errors import InputError
from kit.core.paths import Paths
from kit.probes.evidence import FoldEvidence, read_evidence


@dataclass(frozen=True, kw_only=True)
class Folding:
    """The folds' kind, the groups file they keep together (if any), and why."""

    kind: str  # "stratified" or "group"
    reason: str
    groups_file: Path | None = None
    groups_declared: bool = False

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "reason": self.reason}
        if self.groups_file is not None:
            out["groups_file"] = str(self.groups_file)
        return out


def _declared(competition: Competition, root: Path, why: str) -> Folding:
    file = root / competition.groups.file
    return Folding(kind="group", groups_file=file, groups_declared=True,
                   reason=f"{why}: the competition declares groups ({competition.groups.file}, "
                          f"column {competition.groups.group_column})")


def _probed(competition: Competition, root: Path, paths: Paths, command: str) -> Folding:
    groups = paths.groups_file(competition.name, root)
    if not groups.is_file():
        raise InputError(
            f"--folds group needs groups: {competition.name} declares none, and {groups} does "
            f"not exist: run `{command}` on the same data first, or pass --groups CSV with "
            "path,group columns")
    return Folding(kind="group", groups_file=groups,
                   reason="--folds group: the groups kit probe inferred on this data")


def _from_evidence(evidence: FoldEvidence | None, command: str) -> Folding:
    if evidence is None:
        return Folding(kind="stratified", reason=(
            "no probe of this data yet, so stratified; `" + command + "` and a second run let "
            "the folds follow the groups and near-duplicates it finds"))
    if evidence.groups_leak and evidence.test_shift and evidence.groups_file is not None:
        return Folding(kind="group", groups_file=evidence.groups_file, reason=(
            f"the probe found {evidence.n_groups} groups that make stratified CV optimistic, "
            f"and a test set unlike train ({evidence.shift_text()})"))
    if evidence.within_train_pairs and evidence.clusters_file is not None:
        return Folding(kind="stratified", groups_file=evidence.clusters_file, reason=(
            f"stratified, with the {evidence.within_train_pairs} near-duplicate pairs the probe "
            "found inside train kept in one fold each"))
    return Folding(kind="stratified", reason=(
        "the probe found no groups the test set lacks and no near-duplicates inside train"))


def resolve_folding(competition: Competition, root: Path, paths: Paths, *, folding: str,
                    groups_file: Path | None, command: str) -> Folding:
    """The folds of a run on `root` (see the module docstring); `command` is the probe command
    to suggest.

    Raises:
        InputError: `--groups` with `--folds stratified`, or `--folds group` with no groups.
    """
    if groups_file is not None:
        if folding == "stratified":
            raise InputError("--groups CSV makes group folds; drop it, or drop --folds "
                             "stratified")
        return Folding(kind="group", groups_file=groups_file,
                       reason=f"--groups {groups_file}: group folds over its groups")
    if folding == "stratified":
        return Folding(kind="stratified", reason="--folds stratified")
    if competition.groups is not None:
        return _declared(competition, root, "--folds " + folding)
    if folding == "group":
        return _probed(competition, root, paths, command)
    return _from_evidence(read_evidence(paths.probe_dir(competition.name, root)), command)


__all__ = ["Folding", "resolve_folding"]
