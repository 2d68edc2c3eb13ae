"""utils.sanity, values its mutants used to change unnoticed (tests/test_sanity.py is another helper's file).

Each test names the behaviour it protects; the mutation run (make mutation MODULE=sanity) checks they catch it.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from utils.sanity import ssim


def _unit_magnitude(a: np.ndarray) -> np.ndarray:
    return np.abs(a) / np.abs(a).max()


@pytest.mark.parametrize(
    "shape, window",
    [((3, 3), 3), ((4, 4), 3), ((4, 9), 3), ((6, 6), 5), ((5, 6), 5), ((7, 7), 7), ((8, 8), 7), ((12, 10), 7)],
)
def test_ssim_window_is_the_largest_odd_side_up_to_seven_that_fits(shape: tuple[int, int], window: int) -> None:
    """An even map side gives the odd side below it (scikit-image refuses an even window)."""
    rng = np.random.default_rng(sum(shape))
    a, b = rng.normal(size=shape), rng.normal(size=shape)
    expected = structural_similarity(_unit_magnitude(a), _unit_magnitude(b), data_range=1.0, win_size=window)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-12)


def test_ssim_of_a_map_and_its_transpose_on_an_even_square() -> None:
    ramp = np.arange(36.0).reshape(6, 6)
    expected = structural_similarity(ramp / 35, ramp.T / 35, data_range=1.0, win_size=5)
    assert ssim(ramp, ramp.T) == pytest.approx(expected, abs=1e-12)
    assert ssim(ramp, ramp) == pytest.approx(1.0)
