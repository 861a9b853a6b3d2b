"""The architecture: one subpackage per layer, imports only downwards, TensorFlow only where it is
needed, functions short enough to read at once, every recipe option reachable."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PURE = ("kit.core.atomic", "kit.core.paths", "kit.core.registry", "kit.core.errors",
        "kit.competition", "kit.data.layout", "kit.data.folds", "kit.data.tta",
        "kit.data.annotations", "kit.data.images", "kit.data.metadata", "kit.data.groups",
        "kit.runs.record", "kit.runs.find", "kit.scoring.score", "kit.scoring.leaderboard",
        "kit.scoring.calibration", "kit.scoring.submission", "kit.cli.main")
MAX_LINES = 60


def test_imports_follow_the_layers_and_the_pure_layers_never_import_tensorflow():
    """import-linter over the contracts in pyproject.toml (every import, lazy ones included)."""
    from importlinter.cli import lint_imports

    status = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True,
                          no_logo=True)
    assert status == 0, "a contract is broken; run `lint-imports` to see which import"


def test_importing_the_pure_layers_and_the_parser_loads_no_tensorflow():
    code = (f"import sys\nfor m in {PURE!r}: __import__(m)\n"
            "from kit.cli.main import build_parser\nbuild_parser()\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
            "print(bad)\nsys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_no_function_in_kit_is_longer_than_60_lines():
    long = [f"{path.relative_to(REPO)}:{node.lineno} {node.name} "
            f"({node.end_lineno - node.lineno + 1} lines)"
            for path in sorted((REPO / "kit").rglob("*.py"))
            for node in _functions(ast.parse(path.read_text()))
            if node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert not long, "split into named steps:\n" + "\n".join(long)


def test_every_layer_folder_is_a_package_and_kit_has_no_loose_modules():
    loose = sorted(p.name for p in (REPO / "kit").glob("*.py")
                   if p.name not in ("__init__.py", "__main__.py"))
    assert loose == []
    for folder in (REPO / "kit").iterdir():
        if folder.is_dir() and folder.name != "__pycache__":
            assert (folder / "__init__.py").is_file(), folder


def _flags(parser_name: str) -> set[str]:
    from kit.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {s for a in commands.choices[parser_name]._actions for s in a.option_strings}


@pytest.mark.parametrize("command", ["run", "kernel"])
def test_every_recipe_field_is_an_option_of_run_and_kernel(command: str):
    from kit.competition import Recipe
    from kit.competition.options import option

    flags = _flags(command)
    for field in dataclasses.fields(Recipe):
        assert option(field.name).flag in flags, field.name


def test_a_kernel_bakes_every_option_it_is_given(tmp_path: Path):
    """Each option of the table goes into the kernel's `kit run` words, parsed back the same."""
    from kit.cli.kernel import recipe_words
    from kit.cli.main import build_parser
    from kit.competition.options import OPTIONS

    samples = {"input_size": "96x64", "fcn_input_size": "128x80", "box_input_size": "96x64",
               "metadata": "size,width", "augment": "flip,zoom", "seeds": "0,1",
               "folds": "3", "mode": "features", "pooling": "avg", "pseudo_label": "0.9",
               "base_lr_factor": "0.5", "dropout": "0.2", "learning_rate": "0.01",
               "fold_kind": "stratified", "training": "per-fold"}
    argv = ["kernel", "fisheries"]
    for option in OPTIONS:
        if option.switch:
            argv.append(option.flag)
            continue
        default = {int: "2", float: "0.5"}.get(option.parse, "x")
        argv += [option.flag, samples.get(option.name, default)]
    args = build_parser().parse_args(argv)
    from kit.competition import load_competition

    words = recipe_words(args, load_competition("fisheries"))
    again = build_parser().parse_args(["run", "fisheries", *words])
    for option in OPTIONS:
        assert getattr(again, option.name) == getattr(args, option.name), option.name


def test_the_readme_is_a_short_tour_whose_links_resolve():
    import re

    text = (REPO / "README.md").read_text()
    assert len(text) <= 12_000
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (REPO / target).exists(), f"README links to a missing file: {target}"
