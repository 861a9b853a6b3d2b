"""Dogs vs. Cats Redux: Kernels Edition (Kaggle, 2016-2017).

Two classes; the submission holds one column, `label` = P(dog). Image sizes are unrelated to the
class: a size probe must find no leak here.
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
    name="dogs-vs-cats-redux",
    slug="dogs-vs-cats-redux-kernels-edition",
    title="Dogs vs. Cats Redux: Kernels Edition",
    classes=("cat", "dog"),
    label_source="filename_prefix",
    test_splits=(TestSplit(name="test", folder="test", id_template="{stem}"),),
    submission=SubmissionFormat(
        id_column="id",
        kind="positive_class",
        value_column="label",
        positive_class="dog",
        samples=(SampleSubmission(file="sample_submission.csv", splits=("test",)),),
    ),
    recipe=Recipe(backbone="vgg16", weights="imagenet", folds=5, tta=2, epochs=30),
    demo_recipe=DEMO_RECIPE,
    demo="kit.demo.dogs_vs_cats",
)
