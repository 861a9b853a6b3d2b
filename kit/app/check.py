"""Recipe checks that need the registries: run before any data work.

`Recipe` validates each field on its own (kit.competition.recipe); here are the checks that need
the backbone, head, loss and schedule registries or the competition: unknown names (close
matches listed), input sizes a backbone cannot take, and option combinations that cannot run.
"""

from __future__ import annotations

from kit.competition import Competition, Recipe
from kit.core.errors import InputError, UnknownNameError
from kit.data.layout import COLUMNS as TABLE_COLUMNS
from kit.features.backbones import check_input_size, get_backbone
from kit.models.heads import head_registry


def check_recipe(recipe: Recipe, competition: Competition | None = None) -> None:
    """Reject recipe combinations that cannot run, before any data work.

    Raises:
        KeyError: an unknown backbone, head, loss or schedule (close matches listed).
        ValueError: an input size the backbone cannot take (the option named);
            `weights="demo"` (the demo base's pretrained weights) with another backbone;
            a box head on a competition without bounding boxes; a mode a head does not support.
    """
    from kit.models.losses import check_loss
    from kit.models.schedules import check_schedule

    backbone = get_backbone(recipe.backbone)
    spec = head_registry().get(recipe.head)
    for option, size in (("--input-size", recipe.input_size),
                         ("--fcn-input-size", recipe.fcn_input_size),
                         ("--box-input-size", recipe.box_input_size)):
        if size is not None:
            try:
                check_input_size(backbone, tuple(size))
            except (TypeError, ValueError) as error:
                raise InputError(f"{option} {size!r}: {error}") from error
    if recipe.weights == "demo" and recipe.backbone != "demo_cnn":
        raise InputError(
            f"--weights demo is only for --backbone demo_cnn; received --backbone "
            f"{recipe.backbone}. Pass --weights imagenet, none or PATH with it."
        )
    check_loss(recipe.loss, extra=competition.losses if competition else None)
    check_schedule(recipe.schedule, extra=competition.schedules if competition else None)
    if competition is not None and spec.boxes and competition.annotations is None:
        raise InputError(
            f"the {spec.name} head needs bounding boxes, and competition {competition.name} has "
            "no bounding-box annotations (its competition.py declares no `annotations` folder); "
            "choose --head dense, metadata-merge or fcn"
        )
    if spec.meta:
        check_metadata_columns(recipe.metadata)
    if recipe.head == "crop" and recipe.pseudo_label is not None:
        raise InputError("--pseudo-label works with the heads trained on whole images; the "
                         "crop head does not take it (drop --pseudo-label or pick another head)")
    if recipe.mode == "finetune" and recipe.pseudo_label is not None:
        raise InputError("--pseudo-label works with heads on cached features; --mode finetune "
                         "does not take it (drop one of the two)")
    if recipe.mode == "finetune" and recipe.head not in FINETUNE_HEADS:
        raise InputError(
            f"--mode finetune trains the base with a {' or '.join(FINETUNE_HEADS)} head; "
            f"received --head {recipe.head}"
        )


FINETUNE_HEADS = ("dense",)


def check_metadata_columns(columns: tuple[str, ...]) -> None:
    """The metadata-merge head's columns must be image-table columns (or `size`), not the label.

    Raises:
        KeyError: A column the image table does not have (the known ones listed).
        ValueError: `label` (the target itself) or no column at all.
    """
    if not columns:
        raise InputError("--metadata needs at least one column, such as size")
    if "label" in columns:
        raise InputError("--metadata cannot use 'label': it is the target, and unknown for test "
                         "images; choose from size, width, height, split")
    unknown = [c for c in columns if c != "size" and c not in TABLE_COLUMNS]
    if unknown:
        raise UnknownNameError(f"metadata columns {unknown} are not in the image table; choose from "
                       f"size, {', '.join(c for c in TABLE_COLUMNS if c != 'label')}")


__all__ = ["FINETUNE_HEADS", "check_metadata_columns", "check_recipe"]
