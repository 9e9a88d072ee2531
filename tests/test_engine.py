"""The engine's helpers that do not need Ray."""

import numpy as np
import pytest

from atlas.pipeline.engine import concat


def test_concat_fills_each_array_in_place_from_batches_of_any_size():
    batches = [{"xy": np.full((n, 2), n, np.float32), "kind": np.full(n, n, np.int8)} for n in (3, 1, 4)]
    out = concat(iter(batches), 8)
    assert out["xy"].dtype == np.float32 and out["kind"].dtype == np.int8
    assert out["xy"][:, 0].tolist() == [3, 3, 3, 1, 4, 4, 4, 4] and out["kind"].tolist() == out["xy"][:, 1].tolist()


def test_concat_refuses_batches_that_do_not_add_up():
    with pytest.raises(ValueError, match="batches held 3 rows, not 4"):
        concat([{"a": np.zeros(3)}], 4)
