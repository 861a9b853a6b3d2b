"""State Farm Distracted Driver Detection (Kaggle, 2016).

Ten classes of driver behaviour (safe driving, texting, phoning, the radio, drinking, reaching
behind, hair and makeup, talking to the passenger), photographed from the passenger side. Each
driver's frames of one class are consecutive video frames, and the test drivers never appear in
train: random folds put one driver's near-identical frames on both sides of a split and promise
scores the leaderboard never gives. `driver_imgs_list.csv` names each training image's driver
(`subject`), so `run --folds group` keeps every driver in one fold.
"""

import dataclasses

from kit.competition import (
    Competition,
    CsvGroups,
    Recipe,
    SampleSubmission,
    SubmissionFormat,
    TestSplit,
)
from kit.demo.recipe import DEMO_RECIPE

COMPETITION = Competition(
    name="state-farm",
    slug="state-farm-distracted-driver-detection",
    title="State Farm Distracted Driver Detection",
    classes=("c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"),
    label_source="folder",
    train_folder="imgs/train",
    test_splits=(TestSplit(name="test", folder="imgs/test", id_template="{name}"),),
    submission=SubmissionFormat(
        id_column="img",
        kind="per_class",
        samples=(SampleSubmission(file="sample_submission.csv", splits=("test",)),),
    ),
    groups=CsvGroups(file="driver_imgs_list.csv", group_column="subject",
                     path_template="imgs/train/{classname}/{img}"),
    # A horizontal flip mirrors the cabin and swaps the driver's hands (c1/c3, c2/c4), so both
    # recipes predict on the plain view only (TTA 2 adds the flipped view, which the head never
    # trained on) and the demo's fine-tuning augments brightness only.
    recipe=Recipe(backbone="vgg16", weights="imagenet", folds=5, tta=1, epochs=30,
                  augment=("rotate", "zoom", "brightness")),
    demo_recipe=dataclasses.replace(DEMO_RECIPE, tta=1, augment=("brightness",)),
    demo="kit.demo.state_farm",
)
