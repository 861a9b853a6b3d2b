"""Read what `python -m kit probe` left for one dataset, for the report's leakage section.

The probe writes into `Paths.probe_dir(competition, data_root)`: always `report.md` (its
Markdown report) and `groups.csv`, and `probe.json` when asked to (`--json` pointed there; the
JSON is `kit.probes.runner.ProbeReport.to_dict()`). The report prefers `probe.json` (figures,
verdicts, duplicate pairs as images) and falls back to showing `report.md` as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.core.errors import InputError

PROBE_JSON = "probe.json"
PROBE_MARKDOWN = "report.md"
MAX_FIGURES = 80


@dataclass(frozen=True, kw_only=True)
class DuplicatePair:
    """Two images the probe found (nearly) identical; `distance` in perceptual-hash bits."""

    a: str
    b: str
    distance: float | None = None


@dataclass(frozen=True, kw_only=True)
class ProbeFindings:
    """What the report shows of a probe's results.

    Attributes:
        source: the file read.
        verdicts: probe name -> its one-line verdict (size, duplicates, groups, ...).
        leaks: probe name -> whether it found a leak.
        adversarial_auc: train-vs-test classifier AUC (0.5: indistinguishable), with its
            interval, or None.
        stratified_cv: CV log loss of the probe's model with stratified folds, or None.
        group_cv: the same with group folds, or None.
        gap: group minus stratified CV, or None.
        duplicates: near-duplicate pairs.
        figures: every scalar of the JSON, as (dotted key, value), at most `MAX_FIGURES`.
        markdown: the probe's Markdown report, when no JSON was found.
    """

    source: Path
    verdicts: dict[str, str] = field(default_factory=dict)
    leaks: dict[str, bool] = field(default_factory=dict)
    adversarial_auc: float | None = None
    adversarial_interval: tuple[float, float] | None = None
    stratified_cv: float | None = None
    group_cv: float | None = None
    gap: float | None = None
    duplicates: tuple[DuplicatePair, ...] = ()
    figures: tuple[tuple[str, Any], ...] = ()
    markdown: str | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _flat(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Scalars of nested dicts as (dotted key, value); lists are skipped."""
    if isinstance(node, dict):
        out = []
        for key, value in node.items():
            out += _flat(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(node, str | int | float | bool) or node is None:
        return [(prefix, node)]
    return []


def _pairs(duplicates: dict) -> tuple[DuplicatePair, ...]:
    pairs = []
    for item in duplicates.get("pairs") or []:
        if isinstance(item, list | tuple) and len(item) >= 2:
            pairs.append(DuplicatePair(a=str(item[0]), b=str(item[1]),
                                       distance=_number(item[2]) if len(item) > 2 else None))
        elif isinstance(item, dict) and "a" in item and "b" in item:
            pairs.append(DuplicatePair(a=str(item["a"]), b=str(item["b"]),
                                       distance=_number(item.get("hash_distance"))))
    return tuple(pairs)


def parse_probe(data: Any, source: Path) -> ProbeFindings:
    """The figures the report shows, from `kit probe`'s JSON (`ProbeReport.to_dict()`).

    Missing parts stay None/empty, so a partial or older file still shows what it has.

    Raises:
        ValueError: If `data` is not a JSON object.
    """
    if not isinstance(data, dict):
        raise InputError(f"probe results {source} must hold a JSON object; received "
                         f"{type(data).__name__}")
    sections = {name: data.get(name) for name in ("size", "duplicates", "groups", "adversarial",
                                                  "attention")}
    verdicts = {name: str(part["verdict"]) for name, part in sections.items()
                if isinstance(part, dict) and part.get("verdict")}
    adversarial = sections["adversarial"] if isinstance(sections["adversarial"], dict) else {}
    groups = sections["groups"] if isinstance(sections["groups"], dict) else {}
    comparison = groups.get("comparison") if isinstance(groups.get("comparison"), dict) else {}
    stratified = _number(comparison.get("stratified_log_loss"))
    grouped = _number(comparison.get("group_log_loss"))
    low, high = _number(adversarial.get("auc_low")), _number(adversarial.get("auc_high"))
    duplicates = sections["duplicates"] if isinstance(sections["duplicates"], dict) else {}
    return ProbeFindings(
        source=source, verdicts=verdicts,
        leaks={k: bool(v) for k, v in (data.get("leaks") or {}).items()},
        adversarial_auc=_number(adversarial.get("auc")),
        adversarial_interval=(low, high) if low is not None and high is not None else None,
        stratified_cv=stratified, group_cv=grouped,
        gap=grouped - stratified if stratified is not None and grouped is not None else None,
        duplicates=_pairs(duplicates),
        figures=tuple(_flat(data))[:MAX_FIGURES],
    )


def read_probe(folder: Path) -> ProbeFindings | None:
    """The probe's findings in `folder` (`probe.json`, else `report.md`), or None when no probe
    ran on this dataset.

    Raises:
        ValueError: If `probe.json` is not valid JSON (the message names it and the fix).
    """
    folder = Path(folder)
    file = folder / PROBE_JSON
    if file.is_file():
        try:
            data = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"probe results {file} are not valid JSON: {error}; run "
                             "`python -m kit probe` again to rewrite them") from error
        return parse_probe(data, file)
    markdown = folder / PROBE_MARKDOWN
    if markdown.is_file():
        return ProbeFindings(source=markdown, markdown=markdown.read_text())
    return None
