"""utils.faithfulness.centre_map on sizes that are not square (tests/test_faithfulness.py is another helper's file).

A square map cannot tell the vertical spread (sigma x height) from the horizontal one (sigma x width).
"""

from __future__ import annotations

import numpy as np
import pytest

from utils.faithfulness import centre_map


@pytest.mark.parametrize("height, width, sigma", [(6, 15, 0.25), (15, 6, 0.25), (9, 20, 0.1), (1, 7, 0.5)])
def test_centre_map_spreads_each_axis_by_sigma_times_that_side(height: int, width: int, sigma: float) -> None:
    rows = np.arange(height) - (height - 1) / 2
    cols = np.arange(width) - (width - 1) / 2
    expected = np.exp(-0.5 * ((rows[:, None] / (sigma * height)) ** 2 + (cols[None, :] / (sigma * width)) ** 2))
    got = centre_map(height, width, sigma=sigma)
    assert got.shape == (height, width)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_centre_map_falls_to_the_same_value_at_the_same_fraction_of_each_side() -> None:
    """At a quarter of the side from the centre, along either axis, the Gaussian has fallen by the same factor."""
    m = centre_map(9, 17, sigma=0.25)  # centre (4, 8); a quarter of each side: 2.25 rows, 4.25 columns
    vertical = np.interp(4 + 2.25, np.arange(9), m[:, 8])
    horizontal = np.interp(8 + 4.25, np.arange(17), m[4, :])
    assert m[4, 8] == pytest.approx(1.0)
    assert vertical == pytest.approx(horizontal, rel=0.05)
