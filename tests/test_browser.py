"""The course in a real browser: JupyterLab, headless Chromium, Run All, and what a learner would see.

Fixtures (``lab``: a ``Lab``, ``page``: a Playwright page) are in tests/conftest.py; screenshots go to
build/test-artifacts/browser/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from utils.datasets import imagenet_categories

ROOT = Path(__file__).resolve().parents[1]
START_HERE = ROOT / "notebooks" / "00_start_here.ipynb"
EXPLORER = ROOT / "notebooks" / "06_explorer.ipynb"
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
PREDICTION = re.compile(r"^1\. (?P<name>.+?)\s+\d+\.\d+%\s+\(class (?P<index>\d+)\)$", re.MULTILINE)


def test_start_here_runs_in_jupyterlab_and_shows_the_prediction(lab: Any, page: Any) -> None:
    try:
        errors = lab.run_all(page, START_HERE)
        assert errors == [], f"{START_HERE.name} has error outputs in JupyterLab: {errors}"
        outputs = page.locator(f"{lab.NOTEBOOK} .jp-OutputArea-output")
        prediction = outputs.filter(has_text=re.compile(r"\(class \d+\)")).first
        prediction.scroll_into_view_if_needed()
        match = PREDICTION.search(prediction.inner_text().replace("\xa0", " "))
        assert match, f"no prediction line ('1. <class>  NN.NN%  (class N)') in: {prediction.inner_text()!r}"
        index = int(match["index"])
        assert imagenet_categories()[index] == match["name"].strip()
        assert index in CAT_CLASSES, f"the sample cat was shown as {match['name']!r} (class {index})"
        assert page.locator(f"{lab.NOTEBOOK} .jp-RenderedImage img").count() >= 1, "no figure rendered"
    finally:
        lab.screenshot(page, START_HERE.stem)


def test_explorer_widgets_render_and_respond_to_the_opacity_slider(lab: Any, page: Any) -> None:
    try:
        errors = lab.run_all(page, EXPLORER)
        assert errors == [], f"{EXPLORER.name} has error outputs in JupyterLab: {errors}"
        notebook = page.locator(lab.NOTEBOOK)
        slider = notebook.locator(".widget-slider").first
        image = notebook.locator("img.widget-image").first
        slider.scroll_into_view_if_needed()
        assert notebook.locator(".widget-dropdown select").count() >= 1, "the explorer's dropdowns did not render"
        assert image.evaluate("img => img.complete && img.naturalWidth") > 0, "the explorer's picture did not render"
        handle = slider.locator(".noUi-handle")
        assert handle.get_attribute("aria-disabled") != "true" and slider.locator("[disabled]").count() == 0, (
            "the opacity slider is disabled after Run All; the test needs a view with an overlay"
        )
        readout, picture = slider.locator(".widget-readout").inner_text(), image.get_attribute("src")

        handle.focus()
        page.keyboard.press("ArrowRight")  # one step, as a learner would with the keyboard

        page.wait_for_function(
            "([img, old]) => img.getAttribute('src') !== old && img.complete && img.naturalWidth > 0",
            arg=[image.element_handle(), picture],
            timeout=60_000,
        )
        assert slider.locator(".widget-readout").inner_text() != readout
        assert float(slider.locator(".widget-readout").inner_text()) > float(readout)
    finally:
        lab.screenshot(page, EXPLORER.stem)
