"""The Nature Conservancy Fisheries Monitoring (Kaggle, 2016-2017).

Eight classes of catch photographed by fixed cameras on fishing boats. Stage 1 tested on images
from the training boats; stage 2 on new boats, which is where models that learned the boat (for
example through the image size) fell apart.
"""

from kit.competition import (
    Competition,
    Recipe,
    SampleSubmission,
    SubmissionFormat,
    TestSplit,
)
from kit.demo.recipe import DEMO_RECIPE

COMPETITION = Competition(
    name="fisheries",
    slug="the-nature-conservancy-fisheries-monitoring",
    title="The Nature Conservancy Fisheries Monitoring",
    classes=("ALB", "BET", "DOL", "LAG", "NoF", "OTHER", "SHARK", "YFT"),
    label_source="folder",
    test_splits=(
        TestSplit(name="test_stg1", folder="test_stg1", id_template="{name}"),
        TestSplit(name="test_stg2", folder="test_stg2", id_template="test_stg2/{name}"),
    ),
    submission=SubmissionFormat(
        id_column="image",
        kind="per_class",
        samples=(
            SampleSubmission(
                file="sample_submission_stg2.csv", splits=("test_stg1", "test_stg2")
            ),
            SampleSubmission(file="sample_submission_stg1.csv", splits=("test_stg1",)),
        ),
    ),
    # The final (private) leaderboard scored stage 2 only: new boats.
    private_splits=("test_stg2",),
    recipe=Recipe(backbone="vgg16", weights="imagenet", folds=5, tta=2, epochs=30),
    demo_recipe=DEMO_RECIPE,
    demo="kit.demo.fisheries",
    annotations="annotations",
)
