"""The probe results as text: a short terminal table and a Markdown report (pure functions)."""

from __future__ import annotations

from kit.probes.cvgap import RUN_HEAD, CVComparison
from kit.probes.runner import ProbeReport

__all__ = ["markdown_report", "summary_rows", "summary_table"]

MAX_PAIRS = 20


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _verdict(leak: bool, fix: str | None, word: str = "LEAK") -> str:
    """The table's verdict cell: ok, or the leak and its fix."""
    if not leak:
        return "ok"
    return f"{word}, fix: {fix.replace('`', '')}" if fix else word


def _duplicates_row(report: ProbeReport) -> tuple[str, str, str, str]:
    d = report.duplicates
    figure = f"{len(d.pairs)} pairs, {d.cross_split} train/test, {d.within_train} in train"
    c = d.comparison
    evidence = "; ".join(f"{p.a} ~ {p.b} ({p.hash_distance} bits)" for p in d.pairs[:2])
    if d.spread is not None:
        figure += f" ({d.spread.straddling_share:.0%} split)"
    if c is not None:
        head = "run's head" if c.model_kind == RUN_HEAD else "probe model"
        evidence = (f"strat {c.stratified_log_loss:.3f} / clusters kept {c.group_log_loss:.3f},"
                    f" optimism [{c.optimism.low:.3f}, {c.optimism.high:.3f}] p={c.p_value:.3g}"
                    f" ({head})" + (f"; {evidence}" if evidence else ""))
    return ("duplicates", figure, _verdict(d.leak, d.fix), evidence or "none")


def _groups_row(report: ProbeReport) -> tuple[str, str, str, str]:
    g = report.groups
    c = g.comparison
    figure = (f"strat {c.stratified_log_loss:.3f} / group {c.group_log_loss:.3f}" if c
              else f"{g.n_groups} groups")
    private = (f"private {_fmt(g.holdout.get('private'))}"
               if g.holdout and g.holdout.get("private") is not None else "")
    if c is not None:
        head = "run's head" if c.model_kind == RUN_HEAD else "probe model"
        evidence = (f"{c.grouping}; optimism [{c.optimism.low:.3f}, {c.optimism.high:.3f}] "
                    f"p={c.p_value:.3g} ({head})")
    else:
        evidence = f"{g.n_groups} groups"
    return ("groups", figure, _verdict(g.leak, g.fix), f"{evidence}; {private}".strip("; "))


def summary_rows(report: ProbeReport) -> list[tuple[str, str, str, str]]:
    """One ``(probe, figure, verdict, evidence)`` row per probe; a LEAK verdict names its fix."""
    s, a, t = report.size, report.adversarial, report.attention
    rows = [
        ("size",
         f"gain {s.gain_nats:.3f} nats ({s.gain_percent:.1f}%), MI {s.mutual_information:.3f}",
         _verdict(s.leak, s.fix), "; ".join(s.evidence[:2]) or "no repeated sizes"),
        _duplicates_row(report),
        _groups_row(report),
        ("adversarial", f"AUC {a.auc:.3f} [{a.auc_low:.3f}, {a.auc_high:.3f}]",
         "SHIFT" if a.leak else "ok",
         f"{a.source}; " + ", ".join(f"{k} {v:.2f}" for k, v in
                                     next(x for x in a.sources if x.name == a.source)
                                     .per_split.items())),
        ("attention", (f"{t.share:.0%} in box (chance {t.chance:.0%})" if t.share is not None
                       else "-"),
         _verdict(t.leak, t.fix) if t.status == "measured" else "skipped",
         t.reason or ", ".join(f"{c.label} {c.share:.0%}" for c in t.per_class)),
    ]
    return rows


def summary_table(report: ProbeReport) -> str:
    """A fixed-width table for the terminal."""
    rows = summary_rows(report)
    header = ("probe", "figure", "verdict", "evidence")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = []
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) for i in range(3)]
        lines.append("  ".join([*cells, row[3]]))
    return "\n".join(lines)


def _size_section(report: ProbeReport) -> list[str]:
    s = report.size
    classes = [k for k in s.table[0] if k not in ("size", "n")] if s.table else []
    lines = [
        "## 1. Image size", "",
        f"Verdict: **{s.verdict()}**", "",
        f"- Mutual information between size and class: {s.mutual_information:.4f} nats "
        f"(mean under shuffled labels {s.mutual_information_null:.4f}; permutation p = "
        f"{s.mi_p_value:.4g}, {s.n_permutations} permutations).",
        f"- Metadata-only model (size -> class, {s.n_folds}-fold CV): log loss "
        f"{s.metadata_log_loss:.4f} vs class prior {s.prior_log_loss:.4f}: gain "
        f"{s.gain_nats:.4f} nats ({s.gain_percent:.1f}%), {s.gain_interval.level:.0%} "
        f"interval [{s.gain_interval.low:.4f}, {s.gain_interval.high:.4f}].",
        f"- {s.n_sizes} distinct sizes among {s.n_train} training images.", "",
        "| size | n | " + " | ".join(classes) + " |",
        "|---|---|" + "---|" * len(classes),
    ]
    for row in s.table:
        lines.append(f"| {row['size']} | {row['n']} | "
                     + " | ".join(str(row[c]) for c in classes) + " |")
    lines += ["", "Train/test size shift:", ""]
    for shift in s.shift:
        unseen = ", ".join(f"{k} ({v})" for k, v in list(shift.unseen_sizes.items())[:6])
        lines.append(f"- {shift.split}: {shift.n_unseen} of {shift.n_images} images "
                     f"({shift.unseen_share:.0%}) have a size never seen in train"
                     + (f": {unseen}" if unseen else ""))
    return [*lines, ""]


def _duplicates_section(report: ProbeReport) -> list[str]:
    d = report.duplicates
    th = d.thresholds
    lines = [
        "## 2. Near-duplicates", "",
        f"Verdict: **{d.verdict()}**", "",
        f"- Thresholds measured on {th.n_copies} simulated copies (resized, recompressed, "
        f"brightened): perceptual-hash distance <= {th.hash_bound} bits and thumbnail distance "
        f"<= {th.pixel_bound:.4f} catch at least {th.recall:.0%} of copies with "
        f"{th.level:.0%} confidence.",
        f"- {len(d.pairs)} pairs: {d.within_train} within train, {d.within_test} within test, "
        f"{d.cross_split} across train/test.",
    ]
    if d.train_pairs_split_by_stratified_folds is not None:
        lines.append(f"- Stratified folds would split {d.train_pairs_split_by_stratified_folds} "
                     "within-train pairs.")
    if d.spread is not None:
        lines.append(f"- Within train: {d.spread.text()} ({d.spread.straddling_images} of "
                     f"{d.spread.n_train}).")
    if d.comparison is not None:
        lines += _comparison_lines(d.comparison, "folds that keep each cluster whole",
                                   "clusters")
    if d.note:
        lines.append(f"- {d.note}")
    if d.fix:
        lines.append(f"- Fix: {d.fix}.")
    if d.pairs:
        lines += ["", "| a | b | kind | hash bits | thumbnail distance |", "|---|---|---|---|---|"]
        lines += [f"| {p.a} | {p.b} | {p.kind} | {p.hash_distance} | {p.pixel_distance:.4f} |"
                  for p in d.pairs[:MAX_PAIRS]]
        if len(d.pairs) > MAX_PAIRS:
            lines.append(f"\n({len(d.pairs) - MAX_PAIRS} more pairs in the JSON)")
    return [*lines, ""]


def _comparison_lines(c: CVComparison, folds: str, unit: str) -> list[str]:
    """How a stratified-vs-grouped comparison was made and what it measured."""
    return [
        f"- Model: {c.model}.",
        f"- Features: {c.feature_source}.",
        f"- Kept whole: {c.grouping}.",
        f"- Stratified CV log loss {c.stratified_log_loss:.4f} ({c.n_stratified_folds} folds), "
        f"{folds} {c.group_log_loss:.4f} ({c.n_group_folds} folds), class prior "
        f"{c.prior_log_loss:.4f} (each fold moved to the full class prior).",
        f"- Optimism of stratified CV: {c.optimism.estimate:.4f} nats, {c.optimism.level:.0%} "
        f"interval [{c.optimism.low:.4f}, {c.optimism.high:.4f}] (bootstrap over {c.n_groups} "
        f"{unit}); sign-flip test over {unit} p = {c.p_value:.3g}. LEAK when p <= "
        f"{c.alpha:g} and the interval lies above 0.",
    ]


def _groups_section(report: ProbeReport) -> list[str]:
    g = report.groups
    lines = ["## 3. Groups", "", f"Verdict: **{g.verdict()}**", "",
             f"- {g.n_groups} groups written to `{g.groups_file}` (for `run --folds group`).",
             "- Size blocks split by colour: " + ", ".join(
                 f"{b.block} -> {b.n_clusters}" + (f" (p={b.p_value:.3g})" if b.p_value is not None
                                                   else "") for b in g.blocks) + "."]
    if g.declared:
        lines.append(f"- Declared groups: {g.declared['n_groups']} in `{g.declared['file']}` "
                     f"(adjusted Rand index of the inferred groups against them "
                     f"{g.declared['adjusted_rand_index']:.3f}); the comparison keeps these "
                     "whole, as `run --folds group` does.")
    if g.agreement is not None:
        lines.append(f"- Agreement with the true boats (adjusted Rand index): {g.agreement:.3f}.")
    if g.merged_by_duplicates:
        lines.append(f"- {g.merged_by_duplicates} merges so near-duplicates share a group.")
    if g.comparison is not None:
        lines += _comparison_lines(g.comparison, "group folds", "groups")
    if g.holdout:
        what = ("the mean of its stratified fold heads" if g.comparison.model_kind == RUN_HEAD
                else "fitted on every training image")
        lines.append(f"- Same model on the test set ({what}): public {_fmt(g.holdout['public'])}, "
                     f"private {_fmt(g.holdout['private'])} (class prior "
                     f"{_fmt(g.holdout['prior_public'])} / {_fmt(g.holdout['prior_private'])}); "
                     f"closer to private: {g.closer_to_private} CV.")
    if g.note:
        lines.append(f"- {g.note}")
    if g.fix:
        lines.append(f"- Fix: {g.fix}.")
    return [*lines, ""]


def _adversarial_section(report: ProbeReport) -> list[str]:
    a = report.adversarial
    lines = ["## 4. Adversarial validation", "", f"Verdict: **{a.verdict()}**", "",
             f"- Features: {a.feature_source}.", "",
             f"- Verdict per source: permutation test ({a.n_permutations} shuffles of the "
             f"train/test labels) at alpha / {len(a.sources)}; intervals are DeLong's.", "",
             "| source | features | AUC | interval | permutation p | per test split |",
             "|---|---|---|---|---|---|"]
    for s in a.sources:
        per = ", ".join(f"{k} {v:.3f}" for k, v in s.per_split.items())
        lines.append(f"| {s.name} | {s.n_features} | {s.auc.auc:.3f} | "
                     f"[{s.auc.low:.3f}, {s.auc.high:.3f}] | {s.p_value:.3g} | {per} |")
    lines += ["", f"Most test-like training images ({a.source}, out of fold):", ""]
    lines += [f"- {p}: score {v:.3f}" for p, v in a.most_test_like]
    return [*lines, ""]


def _attention_section(report: ProbeReport) -> list[str]:
    t = report.attention
    lines = ["## 5. Attention (class activation maps in the fish box)", "",
             f"Verdict: **{t.verdict()}**", ""]
    if t.status == "measured":
        lines += ["| class | images | CAM share in box | chance (box area) | excess interval |",
                  "|---|---|---|---|---|"]
        for c in t.per_class:
            interval = (f"[{c.excess.low:+.3f}, {c.excess.high:+.3f}]" if c.excess else "n/a")
            lines.append(f"| {c.label} | {c.n_images} | {c.share:.3f} | {c.chance:.3f} | "
                         f"{interval} |")
        lines += ["", "Lowest shares: " + ", ".join(f"{p} ({s:.2f})" for p, s in t.lowest)]
    return [*lines, ""]


def markdown_report(report: ProbeReport) -> str:
    """The full report as Markdown."""
    lines = [
        f"# Leakage report: {report.competition}", "",
        f"Data: `{report.root}` ({report.n_train} train, {report.n_test} test images); run: "
        f"{report.run_id or 'none'}; alpha = {report.settings.alpha}.", "",
        "```", summary_table(report), "```", "",
    ]
    lines += _size_section(report) + _duplicates_section(report) + _groups_section(report)
    lines += _adversarial_section(report) + _attention_section(report)
    lines += ["## Unreadable images", ""]
    lines += ([f"- {u.path}: {u.reason}" for u in report.unreadable] or ["None."])
    return "\n".join(lines) + "\n"
