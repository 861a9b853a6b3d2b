"""Kaggle kernels: a folder with `kernel-metadata.json` and one script carrying the kit.

:func:`build_kernel` writes the folder. The script holds the `kit` package and the
competition's declaration as a base64 zip; on Kaggle it unpacks them into a temporary folder,
puts it first on `sys.path` and calls `kit.cli.kernel.kernel_main`, which runs the same pipeline as
`python -m kit run` on `/kaggle/input/<slug>` with the recipe options baked in at build time,
then copies the submission to `/kaggle/working/submission.csv` and the run record beside it
(`submission.json`).

Kernels run with the internet off, so ImageNet weights cannot be downloaded there: they must
come from a Kaggle dataset or model listed in the metadata's `dataset_sources` /
`model_sources`. The script looks for the backbone's Keras weights file (e.g.
`vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`) under the input root, passes it as
`--weights PATH`, and stops with a message naming the file and the sources when it is missing.
Where Kaggle mounts the competition's archives (`train.zip`, `test_stg2.7z`) rather than
folders, they are extracted safely (`kit.kaggle.archives`) into the work folder first.

The script runs anywhere: `KIT_KAGGLE_INPUT` names a folder laid out like `/kaggle/input` and
`KIT_KAGGLE_WORKING` the folder standing for `/kaggle/working`; working files go to
`$KIT_WORK_DIR` (default: a `kit-kernel` folder in the system temporary folder).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kit.competition import COMPETITION_FILE, Competition
from kit.core.atomic import atomic_write_text
from kit.core.errors import InputError

__all__ = [
    "INPUT_ENV",
    "METADATA_FILE",
    "WORKING_ENV",
    "KernelBundle",
    "KernelSpec",
    "build_kernel",
    "bundle_zip",
    "prepare_data",
    "weights_args",
    "metadata",
    "slugify",
]

METADATA_FILE = "kernel-metadata.json"
INPUT_ENV = "KIT_KAGGLE_INPUT"
WORKING_ENV = "KIT_KAGGLE_WORKING"
DEFAULT_INPUT = Path("/kaggle/input")
DEFAULT_WORKING = Path("/kaggle/working")
PLACEHOLDER_OWNER = "INSERT_USERNAME"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same sources give the same script
_DATASET = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_MODEL = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*){3,4}$")
_KERNEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[a-z0-9][a-z0-9-]*$")
Log = Callable[[str], None]


def slugify(title: str) -> str:
    """The kernel slug Kaggle derives from a title: `kit fisheries` -> `kit-fisheries`."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@dataclass(frozen=True, kw_only=True)
class KernelSpec:
    """What a kernel runs and how Kaggle should run it.

    Args:
        competition: the competition.
        competition_folder: its folder (holding `competition.py`), bundled into the script.
        kernel_id: `owner/slug` on Kaggle.
        title: the kernel's title; its slug should be the id's slug.
        run_args: recipe options of `kit run`, as command-line words (`--backbone`, `vgg16`...).
        weights_file: file name of the weights to look for under the input root, or None.
        dataset_sources: Kaggle datasets attached (`owner/dataset`), e.g. holding weights.
        model_sources: Kaggle models attached (`owner/model/framework/variation[/version]`).
        private: whether the kernel is private.
        gpu: whether the kernel runs on a GPU.
    """

    competition: Competition
    competition_folder: Path
    kernel_id: str
    title: str
    run_args: tuple[str, ...] = ()
    weights_file: str | None = None
    dataset_sources: tuple[str, ...] = ()
    model_sources: tuple[str, ...] = ()
    private: bool = True
    gpu: bool = True

    def __post_init__(self) -> None:
        if not _KERNEL_ID.match(self.kernel_id):
            raise InputError(
                f"kernel id must look like owner/kernel-slug (lower-case slug); received "
                f"id={self.kernel_id!r}. Pass --id USERNAME/{slugify(self.title) or 'kit'}"
            )
        if len(self.title.strip()) < 5:
            raise InputError(f"kernel title must have at least 5 characters (a Kaggle rule); "
                             f"received title={self.title!r}")
        if not (Path(self.competition_folder) / COMPETITION_FILE).is_file():
            raise InputError(f"competition_folder {self.competition_folder} has no "
                             f"{COMPETITION_FILE}")
        for source in self.dataset_sources:
            if not _DATASET.match(source):
                raise InputError(f"dataset source must look like owner/dataset-slug; received "
                                 f"{source!r}")
        for source in self.model_sources:
            if not _MODEL.match(source):
                raise InputError(
                    "model source must look like owner/model/framework/variation[/version]; "
                    f"received {source!r}"
                )

    @property
    def code_file(self) -> str:
        return f"kit_{self.competition.name.replace('-', '_')}.py"


@dataclass(frozen=True, kw_only=True)
class KernelBundle:
    """The kernel folder written by :func:`build_kernel`."""

    folder: Path
    script: Path
    metadata: Path
    kernel_id: str
    run_args: tuple[str, ...]
    weights_file: str | None
    bundle_bytes: int

    def to_dict(self) -> dict:
        return {"folder": str(self.folder), "script": str(self.script),
                "metadata": str(self.metadata), "id": self.kernel_id,
                "run_args": list(self.run_args), "weights_file": self.weights_file,
                "bundle_bytes": self.bundle_bytes}


def metadata(spec: KernelSpec) -> dict:
    """The `kernel-metadata.json` of a kernel (the format `kaggle kernels push` reads)."""
    return {
        "id": spec.kernel_id,
        "title": spec.title,
        "code_file": spec.code_file,
        "language": "python",
        "kernel_type": "script",
        "is_private": spec.private,
        "enable_gpu": spec.gpu,
        "enable_tpu": False,
        "enable_internet": False,
        "dataset_sources": list(spec.dataset_sources),
        "competition_sources": [spec.competition.slug],
        "kernel_sources": [],
        "model_sources": list(spec.model_sources),
    }


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def bundle_zip(competition_folder: Path) -> bytes:
    """A zip of the `kit` package's sources and `competitions/<name>/competition.py`.

    The same sources always give the same bytes (sorted names, fixed dates).
    """
    package = Path(__file__).resolve().parents[1]
    folder = Path(competition_folder).resolve()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(package.rglob("*.py")):
            if "__pycache__" not in path.parts:
                _add(archive, f"kit/{path.relative_to(package).as_posix()}", path.read_bytes())
        _add(archive, f"competitions/{folder.name}/{COMPETITION_FILE}",
             (folder / COMPETITION_FILE).read_bytes())
    return buffer.getvalue()


_SCRIPT = '''#!/usr/bin/env python3
"""{title}: kit's pipeline as a Kaggle kernel, generated by `python -m kit kernel`.

Runs `kit run {competition}` with the recipe options in CONFIG on
/kaggle/input/{slug}
and writes /kaggle/working/submission.csv (its run record beside it, submission.json). The kit package travels inside this file (BUNDLE, a
base64 zip), so nothing is installed and no internet is needed. Kernels have no internet, so
ImageNet weights must come from a Kaggle dataset or model attached to the kernel; the script
says so when they are missing. To run it elsewhere, set KIT_KAGGLE_INPUT to a folder laid out
like /kaggle/input and KIT_KAGGLE_WORKING to the folder standing for /kaggle/working.
"""
import base64
import io
import json
import sys
import tempfile
import zipfile

CONFIG = json.loads({config!r})
BUNDLE = (
{bundle}
)


def main():
    root = tempfile.mkdtemp(prefix="kit-bundle-")
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(BUNDLE))) as bundle:
        bundle.extractall(root)
    sys.path.insert(0, root)
    from kit.cli.kernel import kernel_main

    return kernel_main(CONFIG, bundle_root=root)


if __name__ == "__main__":
    sys.exit(main())
'''


def _config(spec: KernelSpec) -> dict:
    return {
        "competition": spec.competition_folder.resolve().name,
        "slug": spec.competition.slug,
        "run_args": list(spec.run_args),
        "weights_file": spec.weights_file,
        "dataset_sources": list(spec.dataset_sources),
        "model_sources": list(spec.model_sources),
    }


def render_script(spec: KernelSpec, bundle: bytes) -> str:
    """The kernel script's text for `spec`, carrying `bundle`."""
    encoded = base64.b64encode(bundle).decode("ascii")
    lines = "\n".join(f'    "{encoded[i:i + 96]}"' for i in range(0, len(encoded), 96))
    return _SCRIPT.format(title=spec.title, competition=spec.competition.name,
                          slug=spec.competition.slug,
                          config=json.dumps(_config(spec), sort_keys=True), bundle=lines)


def build_kernel(spec: KernelSpec, out: Path) -> KernelBundle:
    """Writes `kernel-metadata.json` and the script into `out` (created; files replaced)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; pass a folder for the kernel")
    bundle = bundle_zip(spec.competition_folder)
    script = atomic_write_text(out / spec.code_file, render_script(spec, bundle))
    meta = atomic_write_text(out / METADATA_FILE, json.dumps(metadata(spec), indent=2) + "\n")
    return KernelBundle(folder=out, script=script, metadata=meta, kernel_id=spec.kernel_id,
                        run_args=spec.run_args, weights_file=spec.weights_file,
                        bundle_bytes=len(bundle))


# ---------------------------------------------------------------- inside the kernel


class KernelInputError(InputError):
    """The kernel's inputs (competition data, weights) are missing; the message says what to
    attach."""


def _input_listing(root: Path) -> str:
    if not root.is_dir():
        return f"{root} does not exist"
    names = sorted(p.name for p in root.iterdir())
    return f"{root} holds {names}" if names else f"{root} is empty"


def prepare_data(input_root: Path, slug: str, competition: Competition, scratch: Path,
                 *, log: Log = print) -> Path:
    """The competition data folder: `<input>/<slug>` itself when it holds the train folder,
    else its archives extracted safely into `scratch`.

    Raises:
        KernelInputError: no competition data under the input root.
    """
    candidates = [input_root / slug, input_root / "competitions" / slug]
    data = next((c for c in candidates if c.is_dir()), None)
    if data is None:
        raise KernelInputError(
            f"competition data not found at {candidates[0]}: attach the competition {slug} to "
            f"the kernel (competition_sources in {METADATA_FILE}); {_input_listing(input_root)}"
        )
    if (data / competition.train_folder).is_dir():
        return data
    from kit.kaggle.archives import ARCHIVE_SUFFIXES, PLAIN_SUFFIXES, extract_archives

    archives = sorted(p for p in data.iterdir()
                      if p.is_file() and p.suffix.lower() in ARCHIVE_SUFFIXES + PLAIN_SUFFIXES)
    if not archives:
        raise KernelInputError(
            f"{data} holds neither a {competition.train_folder}/ folder nor archives to extract; "
            f"{_input_listing(data)}"
        )
    log(f"extracting {', '.join(p.name for p in archives)} into {scratch}")
    extract_archives(archives, scratch, log=log)
    return scratch


def find_weights(input_root: Path, file_name: str, *, skip: Path | None = None) -> Path | None:
    """The first file called `file_name` under the input root (outside `skip`), or None."""
    if not input_root.is_dir():
        return None
    skip_resolved = skip.resolve() if skip is not None else None
    for top in sorted(input_root.iterdir()):
        if skip_resolved is not None and top.resolve() == skip_resolved:
            continue
        if top.is_file() and top.name == file_name:
            return top
        if top.is_dir():
            found = sorted(top.rglob(file_name))
            if found:
                return found[0]
    return None


def _missing_weights(config: dict, input_root: Path) -> str:
    datasets = config.get("dataset_sources") or []
    models = config.get("model_sources") or []
    return (
        f"weights file {config['weights_file']} not found under {input_root}. Kaggle kernels "
        "run with the internet off, so Keras cannot download ImageNet weights: attach a Kaggle "
        "dataset or model holding that file (this kernel's sources: datasets "
        f"{datasets or 'none'}, models {models or 'none'}; rebuild with `python -m kit kernel "
        "... --dataset-source OWNER/DATASET` or `--model-source ...`), or rebuild with "
        "--weights none (random weights)"
    )


def _with_option(args: list[str], option: str, value: str) -> list[str]:
    out = []
    skip = False
    for word in args:
        if skip:
            skip = False
            continue
        if word == option:
            skip = True
            continue
        if word.startswith(option + "="):
            continue
        out.append(word)
    return [*out, option, value]


def weights_args(config: dict, input_root: Path, data: Path, log: Log) -> list[str]:
    args = list(config.get("run_args") or [])
    file_name = config.get("weights_file")
    if not file_name:
        return args
    found = find_weights(input_root, file_name, skip=data if data.is_relative_to(input_root)
                         else None)
    if found is None:
        from kit.features.backbones import keras_cache_candidates

        if any(p.is_file() for p in keras_cache_candidates(file_name)):
            return args
        raise KernelInputError(_missing_weights(config, input_root))
    log(f"weights: {found}")
    return _with_option(args, "--weights", str(found))


def recipe_weights_file(competition: Competition, parsed: argparse.Namespace) -> str | None:
    """The weights file a kernel must find for the recipe `parsed` selects, or None.

    `imagenet` needs the backbone's Keras file; a weights PATH needs a file of that name (it
    cannot travel with the script); `none` and `demo` need nothing.

    Raises:
        ValueError: `imagenet` for a backbone without ImageNet weights.
    """
    from kit.features.backbones import get_backbone

    recipe = competition.recipe
    backbone = get_backbone(parsed.backbone or recipe.backbone)
    weights = parsed.weights
    if weights is None:
        changed = parsed.backbone is not None and parsed.backbone != recipe.backbone
        weights = "none" if changed and recipe.weights == "demo" else recipe.weights
    if weights in ("none", "demo"):
        return None
    if weights == "imagenet":
        if backbone.imagenet_file is None:
            raise InputError(f"backbone {backbone.name} has no ImageNet weights; pass "
                             "--weights none or --weights PATH")
        return backbone.imagenet_file
    return Path(weights).name
