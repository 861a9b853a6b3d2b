"""The run report: pure figures, the probe reader, and the tiny demo run's page (no browser)."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.cli.main import main
from kit.cli.report import resolve_record
from kit.core.paths import Paths
from kit.report.analysis import (
    check_smoothing,
    confusion,
    per_class,
    pick_examples,
    size_by_class,
    smooth,
)
from kit.report.html import Section, page
from kit.report.leakage import parse_probe, read_probe
from kit.report.sections import SECTION_IDS
from tests.conftest import REPO

FISHERIES = str(REPO / "competitions" / "fisheries")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_run_record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The record of one tiny fisheries demo run, made once per test session (also used by
    tests/test_report_browser.py)."""
    base = tmp_path_factory.getbasetemp() / "report-tiny-run"
    marker = base / "record.txt"
    if marker.is_file():
        return Path(marker.read_text())
    base.mkdir(parents=True, exist_ok=True)
    out = base / "run.json"
    code = main(["run", FISHERIES, "--demo", "--demo-preset", "tiny", "--folds", "3",
                 "--epochs", "4", "--work-dir", str(base / "work"),
                 "--submissions-dir", str(base / "submissions"), "--json", str(out)])
    assert code == 0
    record = Path(json.loads(out.read_text())["record"])
    marker.write_text(str(record))
    return record


# ---------------------------------------------------------------- pure figures


def test_smooth_is_debiased_and_zero_means_raw():
    assert smooth([2.0, 2.0, 2.0], 0.9).tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert smooth([1.0, 3.0], 0.0).tolist() == [1.0, 3.0]
    # s1 = 1; s2 = (0.5*0.5*1 + 0.5*3) / (1 - 0.25) = (0.25 + 1.5) / 0.75
    assert smooth([1.0, 3.0], 0.5)[1] == pytest.approx(1.75 / 0.75)
    out = smooth([1.0, float("nan"), 3.0], 0.5)
    assert np.isnan(out[1]) and out[2] == pytest.approx(1.75 / 0.75)


@pytest.mark.parametrize("bad", [1.0, -0.1, 2])
def test_smoothing_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match=r"smoothing must be a float in \[0, 1\) \(0: no "
                                         rf"smoothing\); received smoothing={bad}"):
        check_smoothing(bad)
    with pytest.raises(TypeError, match="smoothing must be a float"):
        check_smoothing("0.5")


def test_confusion_and_per_class():
    y = np.array([0, 0, 1, 1, 2])
    probs = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .8, .1], [.1, .6, .3], [.3, .3, .4]])
    counts = confusion(y, probs.argmax(axis=1), 3)
    assert counts.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    table = per_class(y, probs, ["a", "b", "c"]).set_index("class")
    assert table.loc["a", "support"] == 2 and table.loc["a", "accuracy"] == 0.5
    assert table.loc["b", "precision"] == pytest.approx(2 / 3)
    assert table.loc["c", "log_loss"] == pytest.approx(-np.log(0.4))
    assert table["share_of_loss"].sum() == pytest.approx(1.0)


def test_pick_examples_are_seeded_and_in_the_right_groups():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60)
    picks = pick_examples(y, probs, n_random=5, n_per_class=2, n_uncertain=4, seed=1)
    assert picks == pick_examples(y, probs, n_random=5, n_per_class=2, n_uncertain=4, seed=1)
    pred = probs.argmax(axis=1)
    assert all(pred[r] == y[r] for r in picks.random_correct) and len(picks.random_correct) == 5
    assert all(pred[r] != y[r] for r in picks.random_wrong)
    for k, rows in picks.confident_wrong.items():
        assert all(y[r] == k and pred[r] != k for r in rows)
        assert list(probs[list(rows)].max(axis=1)) == sorted(probs[list(rows)].max(axis=1),
                                                             reverse=True)
    for k, rows in picks.confident_correct.items():
        assert len(rows) <= 2 and all(y[r] == k == pred[r] for r in rows)
    assert probs.max(axis=1)[list(picks.uncertain)].max() <= np.sort(probs.max(axis=1))[3]


def test_size_by_class_counts_train_classes_and_test_splits():
    table = pd.DataFrame({
        "split": ["train", "train", "train", "test_stg1", "test_stg2"],
        "label": ["A", "B", "A", None, None],
        "width": pd.array([10, 10, 20, 10, 30], dtype="Int64"),
        "height": pd.array([5, 5, 5, 5, None], dtype="Int64"),
    })
    counts = size_by_class(table, ["A", "B"])
    assert list(counts.columns) == ["A", "B", "test_stg1", "test_stg2"]
    assert counts.loc["10x5"].tolist() == [1, 1, 1, 0]
    assert counts.loc["unreadable", "test_stg2"] == 1 and counts.index[0] == "10x5"


# ---------------------------------------------------------------- readers


def test_parse_probe_reads_the_probe_json(tmp_path: Path):
    data = {"leaks": {"size": True, "duplicates": False},
            "size": {"leak": True, "verdict": "LEAK: size predicts the class"},
            "adversarial": {"leak": True, "auc": 0.91, "auc_low": 0.88, "auc_high": 0.94,
                            "verdict": "SHIFT"},
            "groups": {"n_groups": 6, "comparison": {"stratified_log_loss": 1.0,
                                                     "group_log_loss": 1.4}},
            "duplicates": {"pairs": [["train/ALB/1.jpg", "test_stg1/2.jpg", 3]],
                           "verdict": "LEAK: 1 train/test near-duplicate pairs"}}
    found = parse_probe(data, tmp_path / "probe.json")
    assert found.adversarial_auc == 0.91 and found.adversarial_interval == (0.88, 0.94)
    assert (found.stratified_cv, found.group_cv) == (1.0, 1.4)
    assert found.gap == pytest.approx(0.4)
    assert [(p.a, p.b, p.distance) for p in found.duplicates] == [
        ("train/ALB/1.jpg", "test_stg1/2.jpg", 3.0)]
    assert found.leaks == {"size": True, "duplicates": False}
    assert found.verdicts["size"].startswith("LEAK") and "groups" not in found.verdicts
    assert ("groups.comparison.group_log_loss", 1.4) in found.figures
    partial = parse_probe({"size": {"verdict": "no size leak"}}, tmp_path / "probe.json")
    assert partial.adversarial_auc is None and partial.duplicates == ()


def test_read_probe_prefers_json_then_markdown(tmp_path: Path):
    assert read_probe(tmp_path) is None
    (tmp_path / "report.md").write_text("# Leakage report")
    assert read_probe(tmp_path).markdown == "# Leakage report"
    (tmp_path / "probe.json").write_text("{not json")
    with pytest.raises(ValueError, match="probe results .*probe.json are not valid JSON"):
        read_probe(tmp_path)
    (tmp_path / "probe.json").write_text(json.dumps({"adversarial": {"auc": 0.5}}))
    assert read_probe(tmp_path).adversarial_auc == 0.5


def test_resolve_record_newest_prefix_and_close_matches(tmp_path: Path):
    folder = tmp_path / "fisheries"
    folder.mkdir()
    for run in ("20240101-000000-aaaaaaaa", "20240102-000000-bbbbbbbb"):
        (folder / f"{run}.json").write_text("{}")
    (folder / "notes.json").write_text("{}")
    assert resolve_record("fisheries", None, tmp_path).stem == "20240102-000000-bbbbbbbb"
    assert resolve_record("fisheries", "20240101", tmp_path).stem == "20240101-000000-aaaaaaaa"
    with pytest.raises(ValueError, match="matches 2 runs"):
        resolve_record("fisheries", "2024010", tmp_path)
    with pytest.raises(ValueError, match="unknown run id '20240102-000000-bbbbbbbc'.*Did you "
                                         "mean: 20240102-000000-bbbbbbbb"):
        resolve_record("fisheries", "20240102-000000-bbbbbbbc", tmp_path)
    with pytest.raises(ValueError, match="no runs of dogs-vs-cats-redux in"):
        resolve_record("dogs-vs-cats-redux", None, tmp_path)
    with pytest.raises(ValueError, match="not both"):
        resolve_record(str(folder / "x.json"), "1", tmp_path)


# ---------------------------------------------------------------- the page


class _Page(HTMLParser):
    """Every tag with its attributes, the text, and the style sheets."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)


def _parse(html: str) -> _Page:
    parsed = _Page()
    parsed.feed(html)
    return parsed


URL_ATTRIBUTES = ("src", "href", "srcset", "action", "poster", "background", "formaction",
                  "data", "manifest", "ping", "cite", "xlink:href")


def assert_nothing_fetched(parsed: _Page) -> None:
    """No tag can make the browser fetch anything: only data: images and #anchors."""
    for tag, attrs in parsed.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed", "base", "video",
                           "audio", "source"), tag
        for name in URL_ATTRIBUTES:
            if name in attrs and attrs[name] is not None:
                value = attrs[name]
                assert (value.startswith("data:image/png;base64,") or
                        (name == "href" and value.startswith("#"))), (tag, name, value[:80])
    css = "".join(parsed.styles)
    assert "url(" not in css and "@import" not in css
    csp = [a.get("content", "") for t, a in parsed.tags
           if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]


def test_page_escapes_text_and_fetches_nothing():
    html = page(title="a <b>", subtitle="&", sections=[Section(id="x", title="<i>", body="")])
    parsed = _parse(html)
    assert "a <b>" in "".join(parsed.text) and not any(t == "b" for t, _ in parsed.tags)
    assert_nothing_fetched(parsed)


@pytest.mark.slow
def test_report_of_the_tiny_demo_run(tmp_path_factory, tmp_path: Path, capsys):
    record = tiny_run_record(tmp_path_factory)
    out_json = tmp_path / "report.json"
    start = time.perf_counter()
    assert main(["report", str(record), "--smoothing", "0.8", "--json", str(out_json)]) == 0
    seconds = time.perf_counter() - start
    assert "report: " in capsys.readouterr().out
    result = json.loads(out_json.read_text())
    report = Path(result["report"])
    run_dir = Path(json.loads(record.read_text())["run_dir"])
    assert report == run_dir / "report.html" and seconds < 30
    assert [s["id"] for s in result["sections"]] == list(SECTION_IDS)
    assert all(s["available"] for s in result["sections"]), result["sections"]

    html = report.read_text()
    parsed = _parse(html)
    assert_nothing_fetched(parsed)
    sections = [a["id"] for t, a in parsed.tags if t == "section"]
    assert sections == list(SECTION_IDS)
    images = [a for t, a in parsed.tags if t == "img"]
    import base64

    for image in images:
        assert base64.b64decode(image["src"].split(",", 1)[1])[:8] == PNG_MAGIC
    files = {a["data-file"] for a in images}
    assert files == {Path(f).name for f in result["figures"]}
    assert {"learning_curves.png", "confusion.png", "per_class.png", "cam.png",
            "size_by_class.png", "examples_random_correct.png", "examples_random_wrong.png",
            "examples_confident_correct.png", "examples_confident_wrong.png",
            "examples_uncertain.png"} <= files
    for name in files:
        assert (run_dir / "report" / name).read_bytes()[:8] == PNG_MAGIC
    examples = [a["alt"] for a in images if a["data-file"].startswith("examples_")]
    assert all("true " in alt and "predicted " in alt for alt in examples)

    text = " ".join(" ".join(parsed.text).split())
    assert "smoothed (factor 0.8)" in text
    assert "Mutual information between size and class" in text  # the size probe's figures
    assert "test_stg2" in text and "share at a new size" in text
    assert "No probe has run on this dataset" in text and "python -m kit probe fisheries" in text
    assert "Attention probe over" in text and "box area (chance)" in text  # CAM in fish boxes
    run = json.loads(record.read_text())
    assert run["run_id"] in text and "Local leaderboard" in text and "public" in text
    assert "Unreadable files" in text and "Not available for this run" not in text

    # With the probe's JSON in its folder, the leakage section shows its figures and pairs;
    # a competition name resolves the newest run of the submissions folder.
    pair = list(pd.read_csv(run["predictions"]["oof"])["path"][:2])
    probe_dir = Paths(work=run_dir.parents[2], submissions=record.parent.parent).probe_dir(
        "fisheries", Path(run["data"]["root"]))
    probe_dir.mkdir(parents=True, exist_ok=True)
    (probe_dir / "probe.json").write_text(json.dumps({
        "leaks": {"duplicates": True},
        "adversarial": {"auc": 0.913, "auc_low": 0.9, "auc_high": 0.93, "verdict": "SHIFT"},
        "groups": {"comparison": {"stratified_log_loss": 1.0, "group_log_loss": 1.25}},
        "duplicates": {"pairs": [[*pair, 2]], "verdict": "LEAK: 1 pair"}}))
    try:
        assert main(["report", "fisheries", "--submissions-dir", str(record.parent.parent),
                     "--smoothing", "0", "--out", str(tmp_path / "r.html")]) == 0
    finally:
        (probe_dir / "probe.json").unlink()
    assert (tmp_path / "r" / "cam.png").is_file() and (tmp_path / "r" / "duplicates.png").is_file()
    parsed = _parse((tmp_path / "r.html").read_text())
    assert_nothing_fetched(parsed)
    text = " ".join(" ".join(parsed.text).split())
    assert "0.913 [0.900, 0.930]" in text and "0.2500" in text and "Duplicate pairs" in text
    alts = [a["alt"] for t, a in parsed.tags if t == "img" and a["data-file"] == "duplicates.png"]
    assert alts == [f"duplicate pairs: {pair[0]} and {pair[1]}"]


def test_report_cli_errors(tmp_path: Path, capsys):
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "run record" in capsys.readouterr().err
    assert main(["report", "fisheries", "--submissions-dir", str(tmp_path)]) == 2
    assert "no runs of fisheries" in capsys.readouterr().err


@pytest.mark.slow
def test_the_fisheries_demo_report_shows_the_size_leak(tmp_path: Path):
    """The full fisheries demo data (its boats differ in camera size and class mix): the
    report's leakage section says the size leaks the class (the data alone, no run needed)."""
    from kit.competition import load_competition
    from kit.data.layout import read_layout
    from kit.demo.cache import generate_demo
    from kit.report.evidence import size_leak_html

    competition = load_competition(FISHERIES)
    root = generate_demo(competition, tmp_path / "data", preset="full")
    html, pictures = size_leak_html(read_layout(competition, root).table,
                                    list(competition.classes))
    assert 'class="alarm">The image size leaks the class' in html
    assert [p.name for p in pictures] == ["size_by_class.png"]
    text = " ".join(_parse(html).text)
    assert "test_stg1 200 0%" in " ".join(text.split())  # stage 1: the training boats
    # stage 2: new boats; two at new sizes, boat_7 (68 of 200 images) at boat_1's 1280x720
    assert "test_stg2 200 68%" in " ".join(text.split())
