"""Image-table columns encoded for the metadata-merge head."""

import numpy as np
import pandas as pd
import pytest

from kit.data.metadata import MetadataEncoder


def _table():
    return pd.DataFrame({"width": [1280, 1280, 1518, 1192], "height": [720, 720, 854, 670],
                         "boat": ["a", "b", "a", "c"], "hour": [1.0, 3.0, np.nan, 5.0]})


def test_size_is_one_hot_over_train_sizes_and_unseen_sizes_are_zeros():
    encoder = MetadataEncoder.fit(_table(), ("size",))
    assert encoder.codings[0].categories == ("1192x670", "1280x720", "1518x854")
    test = pd.DataFrame({"width": [1280, 1732], "height": [720, 974]})
    assert encoder.transform(test).tolist() == [[0, 1, 0], [0, 0, 0]]
    assert encoder.width == 3 and encoder.describe() == "size (3 values one-hot)"


def test_named_columns_numbers_standardised_text_one_hot():
    table = _table()
    encoder = MetadataEncoder.fit(table, ("hour", "boat"))
    out = encoder.transform(table)
    assert out.shape == (4, 4) and out.dtype == np.float32
    hours = out[:, 0]
    assert hours[2] == 0.0  # missing -> the mean
    assert np.isclose(hours[[0, 1, 3]].mean(), 0.0) and hours[0] < hours[1] < hours[3]
    assert out[:, 1:].tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert encoder.describe() == "hour (standardised), boat (3 values one-hot)"


def test_unknown_column_and_no_columns_are_errors():
    with pytest.raises(KeyError, match="metadata column 'boats' is not in the image table; "
                                       "choose from size, boat, height, hour, width"):
        MetadataEncoder.fit(_table(), ("boats",))
    with pytest.raises(ValueError, match="metadata needs at least one column"):
        MetadataEncoder.fit(_table(), ())
