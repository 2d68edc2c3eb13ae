"""The rendered course (``make html``, scripts/build_site.py): one real lesson built end to end, and a failing one.

Building the whole course takes minutes, so the test builds lesson 00 through the same ``main``
that ``make html`` runs, and checks the index, the links and the figures.
"""

from __future__ import annotations

import base64
import doctest
import importlib.util
import io
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EMBEDDED_PNG = re.compile(r'<img[^>]+src="data:image/png;base64,([^"]+)"')


def _load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "scripts" / "build_site.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_site"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


site = _load_builder()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Lesson 00, built by ``make html``'s code path into a temporary folder."""
    out = tmp_path_factory.mktemp("site") / "html"
    assert site.main(["--only", "00_", "--out", str(out)]) == 0
    return out


def test_the_builders_docstring_examples_hold() -> None:
    result = doctest.testmod(site)
    assert result.attempted > 0 and result.failed == 0


def test_every_link_on_the_index_resolves(built: Path) -> None:
    index = (built / "index.html").read_text()
    links = site.local_links(index)
    assert "00_start_here.html" in links and "instructor_guide.html" in links
    missing = [link for link in links if not (built / link.split("#")[0]).is_file()]
    assert missing == []


def test_the_lesson_page_embeds_every_figure_the_notebook_drew(built: Path) -> None:
    page = (built / "00_start_here.html").read_text()
    manifest = json.loads((built / "lessons.json").read_text())
    (lesson,) = manifest["lessons"]
    figures = EMBEDDED_PNG.findall(page)
    assert lesson["figures"] >= 1 and len(figures) == lesson["figures"]
    for data in figures:
        with Image.open(io.BytesIO(base64.b64decode(data))) as picture:
            assert picture.format == "PNG" and min(picture.size) >= 100


def test_pages_name_the_model_and_the_index_lists_the_lesson(built: Path) -> None:
    manifest = json.loads((built / "lessons.json").read_text())
    (lesson,) = manifest["lessons"]
    first_cell = nbformat.read(NOTEBOOKS / "00_start_here.ipynb", as_version=4).cells[0].source
    heading = next(line for line in first_cell.splitlines() if line.startswith("# "))
    assert lesson["title"] == heading[2:] and lesson["summary"] and lesson["run_seconds"] > 0
    for name in ("index.html", "00_start_here.html", "instructor_guide.html"):
        text = (built / name).read_text()
        assert f"XAI_MODEL={manifest['model']}" in text and manifest["model"] == "squeezenet1_1"
    index = (built / "index.html").read_text()
    assert lesson["title"] in index and lesson["summary"].rstrip(".") in index


def test_links_between_lessons_point_at_pages_not_notebooks(built: Path) -> None:
    links = site.local_links((built / "00_start_here.html").read_text())
    assert "01_grad_cam.html" in links
    assert not [link for link in links if ".ipynb" in link]
    assert site.broken_links(built, allowed=[site.page_for(p, NOTEBOOKS) for p in NOTEBOOKS.rglob("*.ipynb")]) == []


def test_the_guide_on_the_site_carries_this_builds_agenda(built: Path) -> None:
    guide = (built / "instructor_guide.html").read_text()
    (lesson,) = json.loads((built / "lessons.json").read_text())["lessons"]
    assert f"{lesson['run_seconds']:.0f} s" in guide and f"{lesson['slot_minutes']} min" in guide
    assert 'href="00_start_here.html"' in guide


def test_the_repositorys_guide_has_an_agenda_block() -> None:
    text = site.GUIDE.read_text()
    assert text.count(site.AGENDA_START) == 1 and text.count(site.AGENDA_END) == 1
    assert "| 0:00 |" in text, "the guide's agenda is empty; run scripts/build_site.py --update-guide"


def _notebook(path: Path, *sources: str) -> None:
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernel}), path)


def test_a_failing_notebook_fails_the_build_with_its_name_and_error_and_leaves_no_site(tmp_path: Path) -> None:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "00_fine.ipynb", "print('fine')")
    _notebook(notebooks / "01_broken.ipynb", "x = 1", "x / 0")
    out = tmp_path / "html"
    out.mkdir()
    for name in ("index.html", "lessons.json"):  # an old site: it must not survive a failed build
        (out / name).write_text("from an earlier build")
    with pytest.raises(site.SiteBuildError, match=r"01_broken\.ipynb: cell 3 failed") as failure:
        site.build_site(site.find_lessons(notebooks), out, model_name="squeezenet1_1", model_description="offline",
                        notebooks_dir=notebooks, guide=None)
    assert "ZeroDivisionError" in str(failure.value) and "x / 0" in str(failure.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks"]


def test_lessons_are_found_by_file_name_with_each_subfolder_its_own_section(tmp_path: Path) -> None:
    for name in ("10_later.ipynb", "02_first.ipynb", "solutions/02_first.ipynb", ".ipynb_checkpoints/02_first-checkpoint.ipynb"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("{}")
    lessons = site.find_lessons(tmp_path)
    assert [(lesson.page, lesson.section) for lesson in lessons] == [
        ("02_first.html", "Lessons"), ("10_later.html", "Lessons"), ("solutions/02_first.html", "Solutions"),
    ]


def test_the_site_covers_every_notebook_in_the_course() -> None:
    on_disk = {p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts}
    assert {lesson.source for lesson in site.find_lessons(NOTEBOOKS)} == on_disk


def test_a_broken_link_is_reported_with_its_page(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text('<a href="b.html">b</a> <a href="c.html#x">c</a> <a href="https://x.org">x</a>')
    (tmp_path / "b.html").write_text("")
    assert site.broken_links(tmp_path) == ["a.html -> c.html#x"]
    assert site.broken_links(tmp_path, allowed=["c.html"]) == []


def test_a_folder_that_holds_something_else_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a site")
    lesson = site.Lesson(NOTEBOOKS / "00_start_here.ipynb", "00_start_here.html", "Lessons")
    with pytest.raises(site.SiteBuildError, match="no lessons.json"):
        site.build_site([lesson], tmp_path, model_name="squeezenet1_1", model_description="offline", guide=None)
    assert (tmp_path / "notes.txt").read_text() == "not a site"


def test_a_guide_without_agenda_markers_is_refused() -> None:
    with pytest.raises(site.SiteBuildError, match="agenda:start"):
        site.with_agenda("# Guide without a block", "| table |")


def test_the_repositorys_guide_agenda_matches_the_notebooks_as_committed() -> None:
    """Words and lines in the guide's agenda are recounted here (no execution); a stale agenda fails."""
    rows = re.findall(r"^\| [\d:]+ \| \[[^\]]+\]\(\.\./notebooks/([^)]+)\) \| (\d+) \| (\d+) \|", site.GUIDE.read_text(), re.M)
    assert rows, "no agenda rows found in the guide"
    for notebook, words, lines in rows:
        counted = site.outline(nbformat.read(ROOT / "notebooks" / notebook, as_version=4))
        assert (int(words), int(lines)) == (counted.prose_words, counted.code_lines), (
            f"{notebook}: the guide says {words} words / {lines} lines, the notebook has "
            f"{counted.prose_words} / {counted.code_lines}; run scripts/build_site.py --update-guide"
        )
    listed = {notebook for notebook, _, _ in rows}
    lessons = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert listed == lessons, f"the agenda lists {sorted(listed)}, the course has {sorted(lessons)}"
