"""The course in a real browser: JupyterLab, headless Chromium, Run All, and what a learner would see;
then the built site (``make html``) read with no network.

Fixtures (``lab``: a ``Lab``, ``page``: a Playwright page, ``course_site``: the site with lesson 00
executed, ``offline_page``: a page that may load files only) are in tests/conftest.py; screenshots
go to build/test-artifacts/browser/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from utils.datasets import imagenet_categories

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "browser"
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


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _search_results(page: Any) -> Any:
    """The links of a finished Sphinx search. Sphinx fills its summary line ("Search finished, ...") only after the
    last result, which moves the list down a line: a click made before then can land beside the link it aimed at.
    The summary line is the signal to wait for; Sphinx's `Search._pulse_status` is not: `stopPulse` sets it to -1 but
    leaves the pulse's timer running, whose next tick sets it back to 0 and pulses on (the last CI timed out on it)."""
    page.locator("p.search-summary").filter(has_text=re.compile(r"^Search finished|did not match")).wait_for(
        state="visible", timeout=30_000
    )
    return page.locator("ul.search li > a")


def test_the_site_reads_offline_steps_to_the_next_lesson_and_finds_a_lesson_by_search(
    course_site: Path, offline_page: Any
) -> None:
    page = offline_page.page
    lessons = json.loads((course_site / "lessons.json").read_text(encoding="utf-8"))["lessons"]
    titles = [row["title"] for row in lessons if row["section"] == "Lessons"]
    try:
        page.goto((course_site / "index.html").as_uri())
        page.wait_for_url("**/book/index.html")
        assert "XAI_MODEL=squeezenet1_1" in page.locator(".bd-header-announcement").inner_text()
        sidebar = page.locator("nav.bd-docs-nav a.reference.internal")
        listed = [text.strip() for text in sidebar.all_inner_texts()]
        assert listed[: len(titles)] == titles, f"the sidebar lists {listed}, the lessons are {titles}"

        sidebar.filter(has_text=titles[0]).first.click()
        page.wait_for_url("**/notebooks/00_start_here.html")
        figures = page.locator(".cell_output img")
        assert figures.count() >= 1
        assert all(
            figures.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(figures.count())
        )
        _screenshot(page, "site-00_start_here")

        page.locator("a.right-next").click()
        page.wait_for_url("**/notebooks/01_grad_cam.html")
        assert page.locator("h1").first.inner_text().startswith(titles[1][:4])
        page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0", timeout=30_000)

        code = page.locator("div.cell_input pre, div.cell_output pre")
        sideways = code.evaluate_all("pres => pres.filter(p => p.scrollWidth > p.clientWidth + 1).length")
        assert sideways == 0, f"{sideways} of {code.count()} code and output blocks scroll sideways at 1280 px"
        assert page.locator("div.cell_output a.course-full-size img").count() >= 1, "a figure opens at full size"
        assert page.locator("div.cell_input button.copybtn").count() >= 1, "code cells have a copy button"

        searches = page.locator(".search-button-field:visible, .search-button:visible")
        assert searches.count() == 1, f"{searches.count()} search boxes on the page"
        searches.first.click()
        query = page.locator("#pst-search-dialog input[name=q]")
        query.fill("discriminativity challenge")
        query.press("Enter")
        page.wait_for_url("**/search.html?q=*")
        results = _search_results(page)
        found = results.filter(has_text="discriminativity").first
        found.wait_for(state="visible", timeout=30_000)
        listed = [text.strip() for text in results.all_inner_texts()]
        assert len(listed) == len(set(listed)), f"search lists a page title twice: {listed}"
        # Snippets: a browser fetches no file:// page for them, so the search's own text extraction is called here
        # on a lesson's page, as it is over HTTP.
        lesson_page = (course_site / "notebooks" / "01_grad_cam.html").read_text(encoding="utf-8")
        snippet_text = " ".join(page.evaluate("html => Search.htmlToText(html)", lesson_page).split())
        assert snippet_text.startswith(titles[1]) and "System Settings" not in snippet_text, snippet_text[:200]
        _screenshot(page, "site-search")
        found.click()
        page.wait_for_url("**/04_discriminativity_challenge.html*")
        assert offline_page.refused == [], f"the site asked the network for {offline_page.refused}"
    finally:
        _screenshot(page, "site-last-page")


def test_the_site_search_finds_a_function_by_its_name_first_and_lands_on_its_api_entry(
    course_site: Path, offline_page: Any
) -> None:
    page = offline_page.page
    try:
        for module, name in (("saliency", "grad_cam"), ("faithfulness", "insertion_deletion")):
            page.goto((course_site / "search.html").as_uri() + f"?q={name}")
            first = _search_results(page).first
            first.wait_for(state="visible", timeout=30_000)
            entry = f"utils.{module}.{name}"
            assert (first.get_attribute("href") or "").endswith(f"book/api/utils.{module}.html#{entry}"), (
                f"the first result for {name} is {first.inner_text()!r} ({first.get_attribute('href')})"
            )
            first.click()
            try:
                page.wait_for_url(f"**/book/api/utils.{module}.html#{entry}", timeout=30_000)
            except Exception as error:  # Playwright's timeout: say where the click left the page
                raise AssertionError(f"clicking the first result for {name} left the page at {page.url}") from error
            assert page.locator(f"dt[id='{entry}']").inner_text().startswith(name), f"{name}'s entry is not shown"
        _screenshot(page, "site-search-api")
        page.set_viewport_size(PHONE)  # an API page on a phone: its examples and long names wrap, the page stays put
        for module in ("saliency", "faithfulness", "exercises.guided_backprop"):
            page.goto((course_site / "book" / "api" / f"utils.{module}.html").as_uri())
            code = page.locator("article pre")
            sideways = code.evaluate_all("pres => pres.filter(p => p.scrollWidth > p.clientWidth + 1).length")
            wide = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert sideways == 0 and wide <= 1, (
                f"utils.{module}: {sideways} of {code.count()} blocks scroll, page +{wide}px"
            )
        _screenshot(page, "site-phone-api")
        assert offline_page.refused == [], f"the site asked the network for {offline_page.refused}"
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
        _screenshot(page, "site-last-page")


PHONE = {"width": 390, "height": 844}
_OPEN = "id => document.getElementById(id).open"


def test_the_site_on_a_phone_opens_the_lessons_follows_one_opens_its_contents_shows_a_check_and_searches(
    course_site: Path, offline_page: Any
) -> None:
    page = offline_page.page
    lessons = json.loads((course_site / "lessons.json").read_text(encoding="utf-8"))["lessons"]
    title = next(row["title"] for row in lessons if row["docname"] == "notebooks/01_grad_cam")
    page.set_viewport_size(PHONE)
    try:
        page.goto((course_site / "book" / "index.html").as_uri())
        banner = page.locator(".bd-header-announcement")
        line = float(banner.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)"))
        assert banner.bounding_box()["height"] <= 2 * line + 12, "the model banner takes more than two lines"

        page.locator("button.primary-toggle:visible").click()
        page.wait_for_function(_OPEN, arg="pst-primary-sidebar-modal", timeout=10_000)
        page.locator("#pst-primary-sidebar-modal a.reference.internal", has_text=title).first.click()
        page.wait_for_url("**/notebooks/01_grad_cam.html")

        page.locator("button.secondary-toggle:visible").click()
        page.wait_for_function(_OPEN, arg="pst-secondary-sidebar-modal", timeout=10_000)
        entries = page.locator("#pst-secondary-sidebar-modal nav a")
        assert entries.count() >= 3, "the page contents list is empty"
        _screenshot(page, "site-phone-contents")
        entries.last.click()
        page.wait_for_url("**/notebooks/01_grad_cam.html#*")
        page.wait_for_function(f"id => !({_OPEN})(id)", arg="pst-secondary-sidebar-modal", timeout=10_000)

        check = page.locator("div.cell_output .output.traceback pre").last
        check.scroll_into_view_if_needed()
        text, sideways = check.evaluate("pre => [pre.innerText.trim(), pre.scrollWidth > pre.clientWidth + 1]")
        assert text.startswith("AnswerCheckError: ") and "\n" not in text and not sideways, (text[:300], sideways)
        _screenshot(page, "site-phone-check")

        page.locator("button.search-button:visible").first.click()
        query = page.locator("#pst-search-dialog input[name=q]")
        query.fill("discriminativity challenge")
        query.press("Enter")
        page.wait_for_url("**/search.html?q=*")
        found = _search_results(page).filter(has_text="discriminativity").first
        found.wait_for(state="visible", timeout=30_000)
        assert offline_page.refused == [], f"the site asked the network for {offline_page.refused}"
    finally:
        _screenshot(page, "site-phone-last-page")
        page.set_viewport_size({"width": 1280, "height": 900})
