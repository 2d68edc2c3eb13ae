"""The course's site (``make html``: Sphinx, MyST-NB and sphinx-book-theme, configured in book/).

Building the whole course executes every notebook, so the shared ``course_site`` fixture
(tests/conftest.py) builds it with lesson 00 executed and the other notebooks as pages without
outputs, through the same command ``make html`` runs. Small notebooks made here check what a
failing cell does, what happens to the previous site, and file names with spaces and accents.
"""

from __future__ import annotations

import doctest
import html
import importlib
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
GUIDE = ROOT / "docs" / "instructor_guide.md"
Builder = Callable[..., subprocess.CompletedProcess[str]]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


sys.path.insert(0, str(BOOK / "_ext"))  # the site's extensions import each other, as Sphinx loads them (conf.py)
course_site_ext = _load("course_site", BOOK / "_ext" / "course_site.py")
course_index_ext = _load("course_index", BOOK / "_ext" / "course_index.py")
glossary_links_ext = _load("glossary_links", BOOK / "_ext" / "glossary_links.py")
api_reference_ext = _load("api_reference", BOOK / "_ext" / "api_reference.py")
builder = _load("book_build", BOOK / "build.py")


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [(tag, name, value) for name, value in attrs if name in ("href", "src") and value]


def refs(page_html: str) -> list[tuple[str, str, str]]:
    """(tag, attribute, value) of every href and src on the page."""
    parser = _Refs()
    parser.feed(page_html)
    return parser.found


def local_links(page_html: str) -> list[str]:
    """The page's links and sources that point inside the site (no scheme, no data URI, no bare anchor)."""
    return [v for _, _, v in refs(page_html) if not urlsplit(v).scheme and not v.startswith(("#", "//"))]


def pages(site: Path) -> list[Path]:
    """The site's pages (``_static/`` holds theme fragments, not pages)."""
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def broken_links(site: Path) -> list[str]:
    """``page -> link`` for every local link of every page whose target is missing (percent-decoded)."""
    broken = []
    for page in pages(site):
        for link in local_links(page.read_text(encoding="utf-8")):
            path = unquote(urlsplit(link).path)
            if path and not (page.parent / path).exists():
                broken.append(f"{page.relative_to(site).as_posix()} -> {link}")
    return broken


def page_of(site: Path, docname: str) -> str:
    return (site / f"{docname}.html").read_text(encoding="utf-8")


def manifest(site: Path) -> dict:
    return json.loads((site / "lessons.json").read_text(encoding="utf-8"))


def lesson(site: Path, docname: str) -> dict:
    (row,) = [row for row in manifest(site)["lessons"] if row["docname"] == docname]
    return row


def output_images(page_html: str) -> list[str]:
    """The ``src`` of each image inside a cell's output on a MyST-NB page."""
    images = []
    for block in re.split(r'<div class="cell_output', page_html)[1:]:
        block = re.split(r'<div class="cell[ "]', block)[0]
        images += re.findall(r'<img[^>]+src="([^"]+)"', block)
    return images


VERDICT = "Not yet right (sign): the map is S_B - S_A; swap the classes, and the map is " + "long " * 20 + "still."
CHECK_TAGS = ["check", "raises-exception"]
"""A lesson's check cell: it raises ``AnswerCheckError`` until the exercise is answered."""


def tracebacks(page_html: str) -> list[str]:
    """The text of each error output on a MyST-NB page."""
    blocks = re.findall(r'<div class="[^"]*output traceback[^"]*">(.*?)</pre>', page_html, flags=re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", block)).strip() for block in blocks]


def build_paths(site: Path, *also: Path) -> list[str]:
    """``page: path`` for each page that shows a path of the machine that built it (the repository, a temp folder)."""
    paths = {str(ROOT), str(Path(sys.executable).parent.parent), *map(str, also)}
    return [
        f"{page.relative_to(site).as_posix()}: {path}"
        for page in pages(site)
        for path in paths
        if path in page.read_text(encoding="utf-8")
    ]


# --- the extension's own functions ----------------------------------------------------------------


def test_the_site_codes_docstring_examples_hold() -> None:
    for module in (course_site_ext, course_index_ext, api_reference_ext, glossary_links_ext, builder):
        with pytest.MonkeyPatch.context() as patch:  # doctest finds a module's functions through sys.modules, where
            patch.setitem(sys.modules, module.__name__, module)  # another test file may have loaded its own copy
            result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_lessons_are_found_by_file_name_with_solutions_their_own_section() -> None:
    names = [
        "book/index",
        "notebooks/10_later",
        "notebooks/solutions/02_first",
        "notebooks/02_first",
        "notebooks/scratch",
        "notebooks/02 b",
        "notebooks/01_été",
        "docs/instructor_guide",
    ]
    assert course_site_ext.course_pages(names) == [
        "notebooks/01_été",
        "notebooks/02 b",
        "notebooks/02_first",
        "notebooks/10_later",
        "notebooks/solutions/02_first",
    ]
    assert course_site_ext.section_of("notebooks/solutions/02_first") == "Solutions"


def test_a_guide_without_agenda_markers_is_refused() -> None:
    with pytest.raises(course_site_ext.CourseSiteError, match="agenda:start"):
        course_site_ext.with_agenda("# Guide without a block", "| table |")


# --- lesson 00, built as make html builds it ------------------------------------------------------


def test_the_index_lists_every_notebook_in_order_and_every_link_resolves(course_site: Path) -> None:
    rows = manifest(course_site)["lessons"]
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in NOTEBOOKS.glob("*.ipynb"))
    solutions = sorted(p.relative_to(ROOT).as_posix() for p in NOTEBOOKS.glob("solutions/*.ipynb"))
    assert [row["notebook"] for row in rows] == on_disk + solutions, "every notebook is a page, lessons then solutions"
    index = page_of(course_site, "book/index")
    for row in rows:
        assert f'href="../{row["page"]}"' in index, f"the index does not link {row['page']}"
    assert (
        index.index('href="../notebooks/00_')
        < index.index('href="../notebooks/01_')
        < index.index('href="../notebooks/solutions/')
    )
    assert 'href="../docs/instructor_guide.html"' in index
    assert broken_links(course_site) == []
    front = (course_site / "index.html").read_text()
    assert "url=book/index.html" in front, "build/html/index.html leads to the course's index"


def test_the_lesson_page_shows_every_figure_the_notebook_drew(course_site: Path) -> None:
    row = lesson(course_site, "notebooks/00_start_here")
    images = output_images(page_of(course_site, "notebooks/00_start_here"))
    assert row["executed"] and row["figures"] >= 1 and len(images) == row["figures"]
    for src in images:
        with Image.open(io.BytesIO((course_site / "notebooks" / unquote(src)).read_bytes())) as picture:
            assert picture.format == "PNG" and min(picture.size) >= 100


def test_pages_name_the_model_and_the_index_summarises_the_lesson(course_site: Path) -> None:
    info = manifest(course_site)
    row = lesson(course_site, "notebooks/00_start_here")
    first_cell = nbformat.read(NOTEBOOKS / "00_start_here.ipynb", as_version=4).cells[0].source
    heading = next(line for line in first_cell.splitlines() if line.startswith("# "))
    assert row["title"] == heading[2:] and row["run_seconds"] > 0
    summary = course_index_ext.readme_summaries((ROOT / "README.md").read_text(encoding="utf-8"))["00_start_here.ipynb"]
    assert info["model"] == "squeezenet1_1"
    for docname in ("book/index", "notebooks/00_start_here", "notebooks/01_grad_cam", "docs/instructor_guide"):
        assert f"XAI_MODEL={info['model']}" in page_of(course_site, docname), docname
    index = " ".join(html.unescape(re.sub(r"<[^>]+>", "", page_of(course_site, "book/index"))).split())
    assert row["title"] in index and re.sub(r"[*`]", "", summary).rstrip(".") in index, "the README's description"


def test_a_page_this_build_did_not_execute_says_so(course_site: Path) -> None:
    assert not lesson(course_site, "notebooks/02_guided_backprop")["executed"]
    assert "Not executed in this build" in page_of(course_site, "notebooks/02_guided_backprop")
    assert "Not executed in this build" not in page_of(course_site, "notebooks/00_start_here")


def test_a_failed_check_shows_its_one_line_and_no_page_shows_a_path_of_the_build_machine(course_site: Path) -> None:
    nb = nbformat.read(NOTEBOOKS / "01_grad_cam.ipynb", as_version=4)
    checks = [cell for cell in nb.cells if "check" in cell.metadata.get("tags", [])]
    shown = tracebacks(page_of(course_site, "notebooks/01_grad_cam"))
    assert checks and len(shown) == len(checks), f"{len(checks)} check cell(s), {len(shown)} error output(s)"
    for text in shown:
        assert len(text.splitlines()) == 1 and text.startswith("AnswerCheckError: "), text[:500]
    assert build_paths(course_site, course_site) == []


def test_links_between_lessons_point_at_pages_and_previous_next_follow_the_lessons(course_site: Path) -> None:
    page = page_of(course_site, "notebooks/00_start_here")
    links = local_links(page)
    assert "01_grad_cam.html" in links
    assert not [link for link in links if link.endswith(".ipynb") and "_sources/" not in link]
    assert re.search(r'class="right-next"\s+href="01_grad_cam.html"', page)


def test_each_notebook_page_offers_its_notebook_for_download(course_site: Path) -> None:
    page = page_of(course_site, "notebooks/00_start_here")
    (download,) = re.findall(r'href="([^"]+\.ipynb)"[^>]*\s+class="[^"]*btn-download-source-button', page)
    downloaded = (course_site / "notebooks" / unquote(download)).read_bytes()
    assert downloaded == (NOTEBOOKS / "00_start_here.ipynb").read_bytes(), "learners download the notebook as committed"


def test_the_solutions_are_their_own_section_of_the_sidebar(course_site: Path) -> None:
    page = page_of(course_site, "notebooks/00_start_here")
    captions = re.findall(r'<span class="caption-text">([^<]+)</span>', page)
    if not (NOTEBOOKS / "solutions").is_dir():  # the hand-out (make handout) leaves the solutions out
        assert captions == ["Lessons", "For instructors", "API reference", "Reference"]
        return
    assert captions == ["Lessons", "Solutions", "For instructors", "API reference", "Reference"]
    solutions = page.split('<span class="caption-text">Solutions</span>')[1].split("caption-text")[0]
    assert 'href="solutions/04_discriminativity_challenge.html"' in solutions


def test_no_page_needs_the_network_to_show_its_text_figures_and_formulas(course_site: Path) -> None:
    remote = []
    for page in pages(course_site):
        for tag, name, value in refs(page.read_text(encoding="utf-8")):
            if tag in ("script", "img", "link", "iframe") and (
                urlsplit(value).scheme in ("http", "https") or value.startswith("//")
            ):
                remote.append(f"{page.relative_to(course_site)}: <{tag} {name}={value}>")
    assert remote == []
    math_page = page_of(course_site, "notebooks/01_grad_cam")
    assert '<script defer="defer" src="../_static/mathjax/tex-chtml.js">' in math_page
    assert re.search(r'<script src="\.\./_static/clipboard\.min\.js[?"]', math_page), "copy buttons, served locally"
    assert (course_site / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 500_000
    assert list((course_site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


def test_the_guide_on_the_site_carries_this_builds_agenda(course_site: Path) -> None:
    guide = page_of(course_site, "docs/instructor_guide")
    row = lesson(course_site, "notebooks/00_start_here")
    assert f"{row['run_seconds']:.0f} s" in guide and f"{row['slot_minutes']} min" in guide
    assert 'href="../notebooks/00_start_here.html"' in guide
    assert "not run" in guide, "a lesson this build did not execute has no run time in the agenda"


# --- the repository's guide ------------------------------------------------------------------------


AGENDA_ROW = re.compile(r"^\| [\d:]+ \| \[[^\]]+\]\(<?\.\./notebooks/([^)>]+)>?\) \| (\d+) \| (\d+) \|", re.M)


def test_the_repositorys_guide_has_an_agenda_block() -> None:
    text = GUIDE.read_text()
    assert text.count(course_site_ext.AGENDA_START) == 1 and text.count(course_site_ext.AGENDA_END) == 1
    assert "| 0:00 |" in text, "the guide's agenda is empty; run python book/build.py --recount-guide"


def test_the_repositorys_guide_agenda_matches_the_notebooks_as_committed() -> None:
    """Words and lines in the guide's agenda are recounted here (no execution); a stale agenda fails."""
    rows = AGENDA_ROW.findall(GUIDE.read_text())
    assert rows, "no agenda rows found in the guide"
    for notebook, words, lines in rows:
        counted = course_site_ext.outline(nbformat.read(NOTEBOOKS / notebook, as_version=4))
        assert (int(words), int(lines)) == (counted.prose_words, counted.code_lines), (
            f"{notebook}: the guide says {words} words / {lines} lines, the notebook has "
            f"{counted.prose_words} / {counted.code_lines}; run python book/build.py --recount-guide"
        )
    listed = {notebook for notebook, _, _ in rows}
    lessons = {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    assert listed == lessons, (
        f"the agenda lists {sorted(listed)}, the course has {sorted(lessons)}; run python book/build.py --recount-guide"
    )


AGENDA_TIMES = re.compile(
    r"^\| [\d:]+ \| \[[^\]]+\]\(<?\.\./notebooks/([^)>]+)>?\) \| \d+ \| \d+ \| [^|]+ "
    r"\| (\d+) min \| (\d+|-) ?(?:min)? \|",
    re.M,
)
STATED_SHARE = (0.75, 2.0)
"""A lesson's own "about N minutes" lies between these multiples of the agenda's reading + running estimate."""


def test_each_lessons_stated_time_is_the_agendas_and_agrees_with_its_estimate() -> None:
    """One source of truth: the agenda reads each lesson's "about N minutes" from its first cell; a lesson that
    states far less (or far more) than reading and running it takes fails here, naming both numbers."""
    rows = AGENDA_TIMES.findall(GUIDE.read_text())
    assert rows, "no agenda rows found in the guide"
    low, high = STATED_SHARE
    for notebook, estimate, stated in rows:
        own = course_site_ext.outline(nbformat.read(NOTEBOOKS / notebook, as_version=4)).stated_minutes
        assert own is not None, f"{notebook}: its first cell states no 'about N minutes'"
        assert stated == str(own), f"{notebook}: the agenda says {stated} min, the lesson says {own}; --recount-guide"
        assert low * int(estimate) <= own <= high * int(estimate), (
            f"{notebook} says about {own} minutes; reading and running it takes about {estimate} "
            f"(the guide's agenda): state between {low * int(estimate):.0f} and {high * int(estimate):.0f} minutes"
        )


def test_update_guide_writes_the_agenda_between_the_markers(tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text(f"# Guide\n\n{course_site_ext.AGENDA_START}\nold\n{course_site_ext.AGENDA_END}\n\nAfter.\n")
    row = {
        "docname": "notebooks/00_a",
        "notebook": "notebooks/00_a.ipynb",
        "section": "Lessons",
        "title": "00 · A",
        "summary": "Do A.",
        "stated_minutes": 10,
        "prose_words": 300,
        "code_lines": 20,
        "executed": True,
        "run_seconds": 6.0,
        "figures": 2,
        "estimate_minutes": 4.1,
        "slot_minutes": 10,
        "page": "notebooks/00_a.html",
    }
    builder.update_guide({"model": "squeezenet1_1", "lessons": [row]}, guide)
    text = guide.read_text()
    assert "| 0:00 | [00 · A](<../notebooks/00_a.ipynb>) | 300 | 20 | 6 s | 4 min | 10 min | 10 min |" in text
    assert "| 0:10 | **End**" in text and "old" not in text and text.endswith("After.\n")


# --- small courses made here -----------------------------------------------------------------------


def _notebook(path: Path, title: str, *cells: str | tuple[str, list[str]], markdown: str = "") -> None:
    """A notebook with a heading (and ``markdown``) then code cells; a (source, tags) pair is a tagged cell."""
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb_cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\n{markdown}")]
    for cell in cells:
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        nb_cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags} if tags else {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=nb_cells, metadata={"kernelspec": kernel}), path)


def _course(tmp_path: Path) -> Path:
    """A source folder laid out like the repository: book/index.md and notebooks/."""
    source = tmp_path / "course"
    (source / "book").mkdir(parents=True)
    for page in BOOK.glob("*.md"):  # the index and the pages it lists
        shutil.copy(page, source / "book" / page.name)
    shutil.copytree(BOOK / "_inventories", source / "book" / "_inventories")  # read relative to the source
    return source


def test_a_failing_cell_fails_the_build_naming_the_notebook_and_cell_and_keeps_the_previous_site(
    tmp_path: Path, site_builder: Builder
) -> None:
    source = _course(tmp_path)
    _notebook(source / "notebooks" / "00_fine.ipynb", "00 · Fine", "print('fine')")
    _notebook(source / "notebooks" / "01_broken.ipynb", "01 · Broken", "x = 1", "x / 0")
    out = tmp_path / "html"
    out.mkdir()
    (out / "lessons.json").write_text("{}")  # the previous site: a failed build must leave it as it was
    (out / "index.html").write_text("the previous site")
    result = site_builder("--source", str(source), "--out", str(out), "--rerun")
    assert result.returncode == 1
    assert "notebooks/01_broken.ipynb: cell 3 failed (ZeroDivisionError)" in result.stderr, result.stderr[-3000:]
    assert "x / 0" in result.stderr and "division by zero" in result.stderr
    assert ".staging" not in result.stderr, "no message points into the staging folder the failed build removes"
    assert (out / "index.html").read_text() == "the previous site" and sorted(p.name for p in out.iterdir()) == [
        "index.html",
        "lessons.json",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course", "html"], "no staging folder is left behind"


def test_file_names_with_accents_and_spaces_build_link_and_allow_tagged_errors(
    tmp_path: Path, site_builder: Builder
) -> None:
    source = _course(tmp_path)
    links = "Next: [the accented lesson](01_été.ipynb), [the spaced one](<02 b.ipynb>) and [again](02%20b.ipynb)."
    _notebook(source / "notebooks" / "00_start.ipynb", "00 · Start", "print(1)", markdown=links)
    _notebook(
        source / "notebooks" / "01_été.ipynb",
        "01 · Été",
        ("raise ValueError('expected')", ["raises-exception"]),
        "print('after the expected error')",
        (f"from utils.exercises import AnswerCheckError\nraise AnswerCheckError({VERDICT!r})", CHECK_TAGS),
    )
    _notebook(source / "notebooks" / "02 b.ipynb", "02 · B", "print(2)")
    _notebook(source / "notebooks" / "solutions" / "01_été.ipynb", "01 · Été, answered", "print('answer')")
    out = tmp_path / "html"
    result = site_builder("--source", str(source), "--out", str(out), "--rerun")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [(row["docname"], row["section"], row["executed"]) for row in manifest(out)["lessons"]] == [
        ("notebooks/00_start", "Lessons", True),
        ("notebooks/01_été", "Lessons", True),
        ("notebooks/02 b", "Lessons", True),
        ("notebooks/solutions/01_été", "Solutions", True),
    ]
    for name in ("01_été", "02 b", "solutions/01_été"):
        assert (out / "notebooks" / f"{name}.html").is_file() and (
            out / "_sources" / "notebooks" / f"{name}.ipynb"
        ).is_file()
    start = page_of(out, "notebooks/00_start")
    targets = [unquote(link) for link in local_links(start)]
    assert targets.count("01_été.html") >= 2 and targets.count("02 b.html") >= 3  # text links and the sidebar
    assert "[the spaced one]" not in start and "[again]" not in start, "no link is left as markdown text"
    assert "ValueError" in page_of(out, "notebooks/01_été") and "after the expected error" in page_of(
        out, "notebooks/01_été"
    )
    assert broken_links(out) == []
    assert tracebacks(page_of(out, "notebooks/01_été"))[-1] == f"AnswerCheckError: {VERDICT}", "a check's one line"
    assert build_paths(out, tmp_path) == []


def test_a_folder_that_holds_something_else_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a site")
    with pytest.raises(builder.SiteBuildError, match="no lessons.json"):
        builder.build(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_replacing_a_site_keeps_the_old_one_until_the_new_one_is_in_place(tmp_path: Path) -> None:
    old, new = tmp_path / "html", tmp_path / ".html.staging"
    old.mkdir()
    (old / "page.html").write_text("old")
    new.mkdir()
    (new / "page.html").write_text("new")
    builder.replace_site(new, old)
    assert (old / "page.html").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["html"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--only", "99"], "--only 99 matches no notebook under notebooks/"),
        (["--out", "FILE"], "is a file; give a folder for the site"),
    ],
)
def test_a_build_that_cannot_make_sense_is_refused_in_one_line_before_it_starts(
    tmp_path: Path, args: list[str], says: str
) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    out = ["--out", str(tmp_path / "html")] if "--out" not in args else []
    argv = [str(afile) if arg == "FILE" else arg for arg in args] + out
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stderr", stderr)
        assert builder.main(argv) == 1
    (line,) = stderr.getvalue().splitlines()
    assert says in line and afile.read_text() == "not a folder" and not (tmp_path / "html").exists()


def test_the_footer_names_each_photos_licence() -> None:
    conf: dict[str, object] = {"__file__": str(BOOK / "conf.py")}
    exec(compile((BOOK / "conf.py").read_text(encoding="utf-8"), str(BOOK / "conf.py"), "exec"), conf)
    licences = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for name in ("CC0", "Apache-2.0", "BSD-3-Clause"):
        assert name in str(conf["copyright"]) and name in licences, name


def test_make_html_says_where_the_site_is_once_and_prints_no_configuration(tmp_path: Path) -> None:
    source = _course(tmp_path)
    _notebook(source / "notebooks" / "00_only.ipynb", "00 · Only", "print('ran')")
    out = tmp_path / "html"
    command = [sys.executable, str(BOOK / "build.py"), "--source", str(source), "--out", str(out), "--rerun"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout + result.stderr
    last = result.stdout.splitlines()[-1]
    assert printed.count(str(out)) == 1 and last.endswith(f"{out / 'index.html'}"), printed[-2000:]
    assert "MdParserConfig" not in printed and "NbParserConfig" not in printed and ".staging" not in printed


CITED = re.compile(r"arxiv\.org/abs/(\d{4}\.\d{4,5})|doi\.org/(10\.\d+/[\w.\-]+\w)")


def test_the_references_page_lists_every_paper_the_course_links_and_the_glossary_its_terms() -> None:
    cited = set()
    for path in [*NOTEBOOKS.rglob("*.ipynb"), *(ROOT / "utils").rglob("*.py"), ROOT / "README.md", GUIDE]:
        cited |= {arxiv or doi for arxiv, doi in CITED.findall(path.read_text(encoding="utf-8"))}
    references = (BOOK / "references.md").read_text(encoding="utf-8")
    assert cited and sorted(c for c in cited if c not in references) == []
    glossary = (BOOK / "glossary.md").read_text(encoding="utf-8")
    terms = re.findall(r"^(\S[^\n]*)\n  ", glossary.split("```{glossary}")[1], flags=re.M)
    for term in ("Saliency map", "Attribution", "Baseline", "Faithfulness", "Discriminativity", "Completeness"):
        assert term in terms, term


def _broken(kind: str, path: Path) -> None:
    """A notebook that cannot become a page: ``kind`` is json, kernel or untitled."""
    if kind == "json":
        path.write_text('{"cells": [', encoding="utf-8")
        return
    _notebook(path, "01 · Broken", "print(1)")
    nb = nbformat.read(path, as_version=4)
    if kind == "kernel":
        nb.metadata.kernelspec = {"name": "python-from-elsewhere", "display_name": "Elsewhere", "language": "python"}
    else:
        nb.cells[0].source = "Some text, and no heading."
    nbformat.write(nb, path)


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("json", "not a notebook that can be read"),
        ("kernel", "its kernel 'python-from-elsewhere' is not installed here (installed: "),
        ("untitled", "no title; start its first markdown cell with a '# ' heading"),
    ],
)
def test_a_notebook_that_cannot_become_a_page_is_named_with_what_to_do(tmp_path: Path, kind: str, says: str) -> None:
    source = _course(tmp_path)
    _notebook(source / "notebooks" / "00_fine.ipynb", "00 · Fine", "print('fine')")
    broken = source / "notebooks" / "01_broken.ipynb"
    _broken(kind, broken)
    with pytest.raises(builder.SiteBuildError) as refused:
        builder.build(tmp_path / "html", source=source, quiet=True)
    assert str(refused.value).startswith(f"{broken}: {says}") and len(str(refused.value).splitlines()) == 1
    assert not (tmp_path / "html").exists()


def test_recount_guide_counts_the_notebooks_again_and_keeps_the_measured_run_times(tmp_path: Path) -> None:
    _notebook(tmp_path / "notebooks" / "00_a.ipynb", "00 · A", "x = 1", markdown="Do A (about 10 minutes).")
    _notebook(tmp_path / "notebooks" / "01_b.ipynb", "01 · B", "y = 2\nz = 3")
    guide = tmp_path / "guide.md"
    old_row = "| 0:00 | [00 · A](<../notebooks/00_a.ipynb>) | 1 | 1 | 42 s | 1 min | 5 min | 5 min |"
    agenda = f"{course_site_ext.AGENDA_START}\n{old_row}\n{course_site_ext.AGENDA_END}"
    guide.write_text(f"# Guide\n\n{agenda}\n", encoding="utf-8")
    assert builder.recount_guide(guide, tmp_path) == ["notebooks/00_a.ipynb", "notebooks/01_b.ipynb"]
    text = guide.read_text(encoding="utf-8")
    assert "| 0:00 | [00 · A](<../notebooks/00_a.ipynb>) | 7 | 1 | 42 s | 1 min | 10 min | 10 min |" in text, text
    assert "| 0:10 | [01 · B](<../notebooks/01_b.ipynb>) | 2 | 2 | not run | 0 min | - | 5 min |" in text, text


# --- the API reference of utils (book/api/) --------------------------------------------------------

API = BOOK / "api"


def _api_modules() -> list[str]:
    """The package's public modules: ``utils.x`` and ``utils.exercises.x``, none whose name starts with ``_``."""
    files = sorted((ROOT / "utils").rglob("*.py"))
    names = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in files]
    return [name for name in names if name != "utils" and not any(part.startswith("_") for part in name.split("."))]


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_every_module_of_the_package_has_its_page_listed_once_in_the_api_index() -> None:
    listed = re.findall(r"^(utils\.[\w.]+)$", (API / "index.md").read_text(encoding="utf-8"), flags=re.M)
    assert sorted(listed) == sorted(_api_modules()), "one page per module: add the new module's page to book/api/"
    assert listed.index("utils.models") == 0 and listed[-1].startswith("utils.exercises."), "layered order"
    for name in listed:
        assert f".. automodule:: {name}\n" in (API / f"{name}.md").read_text(encoding="utf-8"), name


@pytest.mark.parametrize("module_name", _api_modules())
def test_every_public_name_has_an_entry_with_its_signature_and_example(course_site: Path, module_name: str) -> None:
    import inspect

    module = importlib.import_module(module_name)
    page = page_of(course_site, f"book/api/{module_name}")
    article = page[page.index("<article") :]
    first_paragraph = _text(re.search(r"<p>(.*?)</p>", article, flags=re.S)[1])
    job = inspect.getdoc(module).splitlines()[0].replace("``", "")
    assert " ".join(first_paragraph.split()).startswith(job), f"{module_name}'s page opens with its one-line job"
    starts = {name: article.find(f'id="{module_name}.{name}"') for name in module.__all__}
    assert [name for name, at in starts.items() if at < 0] == [], f"{module_name}: names of __all__ without an entry"
    ends = sorted(starts.values())[1:] + [len(article)]
    for name, at in starts.items():
        entry = article[at : ends[sorted(starts.values()).index(at)]]
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        signature = _text(entry[: entry.index("</dt>")])
        try:
            params = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
        except ValueError:  # an exception class: no signature of its own (autodoc shows none either)
            params = []
        assert all(re.search(rf"\b{p}\b", signature) for p in params), f"{name}: {signature} lacks one of {params}"
        doc = inspect.getdoc(obj) or ""
        example = next((line[4:] for line in doc.splitlines() if line.startswith(">>> ")), None)
        if example is not None and obj.__module__ == module_name and obj.__name__ == name:  # not an alias
            assert 'class="doctest' in entry and example in _text(entry), f"{name}: its example is not shown"


def test_the_api_is_its_own_section_after_the_guide_and_search_finds_a_function_on_its_entry(course_site: Path) -> None:
    index = page_of(course_site, "book/index")
    assert index.index('href="../docs/instructor_guide.html"') < index.index('href="api/index.html"')
    search = (course_site / "searchindex.js").read_text(encoding="utf-8")
    for module, name in (("saliency", "grad_cam"), ("faithfulness", "insertion_deletion")):
        assert re.search(rf'"{name}":\[\[\d+,', search) or f'"utils.{module}.{name}"' in search, name
        page = page_of(course_site, f"book/api/utils.{module}")
        assert f'id="utils.{module}.{name}"' in page, f"{name} has no entry on utils.{module}'s page"


def test_a_lesson_naming_a_function_links_to_its_entry_and_the_entry_lists_the_lesson(course_site: Path) -> None:
    lesson_page = page_of(course_site, "notebooks/01_grad_cam")
    linked = re.findall(r'<a class="course-api-link[^"]*" href="([^"]+)"', lesson_page)
    assert "../book/api/utils.saliency.html#utils.saliency.grad_cam" in linked, linked
    for link in linked:
        path, _, anchor = link.partition("#")
        target = (course_site / "notebooks" / path).read_text(encoding="utf-8")
        assert f'id="{anchor}"' in target, f"{link} leads to no entry"
    code_cells = "".join(re.findall(r'<div class="cell_input.*?</pre>', lesson_page, flags=re.S))
    grad_cam = '<a class="course-api-link" href="../book/api/utils.saliency.html#utils.saliency.grad_cam">'
    assert f'{grad_cam}<span class="n">grad_cam</span></a>' in code_cells, "a code cell's grad_cam links to its entry"
    api_page = page_of(course_site, "book/api/utils.saliency")
    entry = api_page[api_page.index('id="utils.saliency.grad_cam"') :].split("</dl>")[0]
    used_in = re.search(r'class="course-used-in">(.*?)</p>', entry, flags=re.S)
    assert used_in and 'href="../../notebooks/01_grad_cam.html"' in used_in[1], "grad_cam lists lesson 01"
    assert "solutions/" not in used_in[1]


def test_each_api_page_opens_with_a_table_of_its_names_linking_to_their_entries_on_the_page(course_site: Path) -> None:
    module = importlib.import_module("utils.saliency")
    page = page_of(course_site, "book/api/utils.saliency")
    article = page[page.index("<article") :]
    table = re.search(r'<table class="autosummary[^"]*">(.*?)</table>', article, flags=re.S)
    assert table, "utils.saliency's page has no summary table"
    job = _text(re.search(r"<p>(.*?)</p>", article, flags=re.S)[1])
    assert article.index(job[:20]) < article.index('<table class="autosummary'), "the module's one-line job first"
    rows = re.findall(r'<tr[^>]*><td><p><a class="reference internal" href="([^"]+)"', table[1])
    assert rows == [f"#utils.saliency.{name}" for name in module.__all__], "one row per name of __all__, in its order"
    for anchor in rows:
        assert f'id="{anchor[1:]}"' in article, f"{anchor} leads to no entry on the same page"
    assert not (course_site / "book" / "api" / "generated").exists(), "no stub pages"
    assert "<a" not in "".join(re.findall(r"<a [^>]*>(.*?)</a>", table[1], flags=re.S)), "a link inside a link"
    assert "Built-in immutable sequence" not in article, "a value without a docstring shows its type's docstring"


# --- intersphinx: the libraries' documentation, from inventories shipped in book/_inventories/ -----------------------

INVENTORIES = BOOK / "_inventories"


def _conf() -> dict:
    conf: dict[str, object] = {"__file__": str(BOOK / "conf.py")}
    exec(compile((BOOK / "conf.py").read_text(encoding="utf-8"), str(BOOK / "conf.py"), "exec"), conf)
    return conf


def test_intersphinx_reads_files_only_and_the_shipped_ones_are_real_inventories_with_their_source() -> None:
    mapping = _conf()["intersphinx_mapping"]
    assert sorted(mapping) == ["PIL", "captum", "matplotlib", "numpy", "python", "torch", "torchvision"]
    readme = (INVENTORIES / "README.md").read_text(encoding="utf-8")
    for name, (base, inventory) in mapping.items():
        assert base.startswith("https://") and "://" not in inventory, f"{name}: the build would fetch {inventory}"
        assert inventory.startswith("book/_inventories/") and base in readme, f"{name}: {inventory} / {base}"
    shipped = {Path(inventory).name for _, inventory in mapping.values() if (ROOT / inventory).is_file()}
    assert shipped >= {"numpy.inv", "matplotlib.inv", "pillow.inv", "python.inv"}
    for name in shipped:
        assert (INVENTORIES / name).read_bytes().startswith(b"# Sphinx inventory version 2"), name
        assert name in readme, f"{name}: book/_inventories/README.md does not say where it came from"


@pytest.mark.parametrize(
    ("project", "name", "page"),
    [
        ("numpy", "numpy.ndarray", "https://numpy.org/doc/stable/reference/generated/numpy.ndarray.html"),
        ("matplotlib", "matplotlib.axes.Axes", "https://matplotlib.org/stable/api/_as_gen/matplotlib.axes.Axes.html"),
        ("PIL", "PIL.Image.Image", "https://pillow.readthedocs.io/en/stable/reference/Image.html"),
        ("python", "pathlib.Path", "https://docs.python.org/3/library/pathlib.html"),
    ],
)
def test_each_shipped_inventory_maps_a_known_name_to_its_page_on_the_librarys_site(
    project: str, name: str, page: str
) -> None:
    from sphinx.util.inventory import InventoryFile

    base, inventory = _conf()["intersphinx_mapping"][project]
    with (ROOT / inventory).open("rb") as stream:
        objects = InventoryFile.load(stream, base, lambda url_base, page: url_base + page)
    (uri,) = [items[name].uri for kind, items in objects.items() if kind.startswith("py:") and name in items]
    assert uri == f"{page}#{name}"


def test_a_signature_naming_a_numpy_matplotlib_or_pil_type_links_to_that_librarys_documentation(
    course_site: Path,
) -> None:
    expected = {
        (
            "utils.datasets",
            "load_image",
        ): "https://pillow.readthedocs.io/en/stable/reference/Image.html#PIL.Image.Image",
        ("utils.visualise", "show_heatmap"): "https://matplotlib.org/stable/api/_as_gen/matplotlib.axes.Axes.html",
        ("utils.faithfulness", "insertion_deletion"): "https://numpy.org/doc/stable/reference/generated/numpy.ndarray",
    }
    for (module, name), url in expected.items():
        page = page_of(course_site, f"book/api/{module}")
        entry = page[page.index(f'id="{module}.{name}"') :]
        signature = entry[: entry.index("</dt>")]
        assert f'href="{url}' in signature, f"{name}'s signature does not link to {url}"


def test_a_build_with_an_inventory_missing_succeeds_and_says_once_which_file_and_how_to_get_it(
    tmp_path: Path, site_builder: Builder
) -> None:
    source = _course(tmp_path)
    (source / "book" / "_inventories" / "numpy.inv").unlink()
    prose = "See `numpy.ndarray`, `plt.imshow` and `input`."  # NumPy's inventory is the one missing
    _notebook(source / "notebooks" / "00_only.ipynb", "00 · Only", "print('ran')", markdown=prose)
    result = site_builder("--source", str(source), "--out", str(tmp_path / "html"), "--rerun")
    assert result.returncode == 0, result.stderr[-3000:]
    said = [line for line in result.stderr.splitlines() if "numpy.inv" in line]
    assert said == [
        "warning: book/_inventories/numpy.inv is missing, so names from numpy link nowhere (the build goes on); "
        "python book/build.py --fetch-inventories downloads it where there is internet."
    ], result.stderr[-3000:]
    assert "matplotlib.inv" not in result.stderr, "a shipped inventory is read without a word"
    page = page_of(tmp_path / "html", "notebooks/00_only")
    imshow = "https://matplotlib.org/stable/api/_as_gen/matplotlib.pyplot.imshow.html#matplotlib.pyplot.imshow"
    assert re.search(rf'<a class="[^"]*course-library-link[^"]*" href="{re.escape(imshow)}"', page), "plt.imshow"
    linked = re.findall(r'<a [^>]*href="(https?://[^"]+)"', page.split("<article")[1].split("</article>")[0])
    assert linked == [imshow], f"only the name of a library whose inventory is there links: {linked}"


def test_fetch_inventories_writes_each_real_inventory_and_names_each_url_that_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in for the documentation sites on 127.0.0.1: one real inventory, one error page, one missing."""
    import http.server
    import threading

    real = (INVENTORIES / "pillow.inv").read_bytes()
    served = {"/pil/objects.inv": real, "/broken/objects.inv": b"<html>Not an inventory</html>"}

    class Docs(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Docs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # the suite's proxy on a closed port is for everything else
    base = f"http://127.0.0.1:{server.server_address[1]}"
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "broken.inv").write_bytes(b"# Sphinx inventory version 2\nthe file already there")
    mapping = {
        "PIL": (f"{base}/pil/", "inv/pillow.inv"),
        "broken": (f"{base}/broken", "inv/broken.inv"),
        "gone": (f"{base}/gone/", "inv/gone.inv"),
    }
    try:
        failed = builder.fetch_inventories(mapping, root=tmp_path, timeout=10)
    finally:
        server.shutdown()
    assert (tmp_path / "inv" / "pillow.inv").read_bytes() == real
    assert (
        failed[0]
        == f"broken: {base}/broken/objects.inv is not a Sphinx inventory (it starts b'<html>Not an inventory</html>')"
    )
    assert failed[1].startswith(f"gone: {base}/gone/objects.inv could not be downloaded (Not Found")
    assert len(failed) == 2 and not (tmp_path / "inv" / "gone.inv").exists()
    assert (tmp_path / "inv" / "broken.inv").read_bytes().endswith(b"the file already there"), "kept as it was"
    assert sorted(p.name for p in (tmp_path / "inv").iterdir()) == ["broken.inv", "pillow.inv"], "no partial file"


def test_fetch_inventories_on_the_command_line_downloads_the_seven_of_the_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[dict] = []
    monkeypatch.setattr(builder, "fetch_inventories", lambda mapping: asked.append(mapping) or ["gone: x failed"])
    assert builder.main(["--fetch-inventories"]) == 1
    assert asked == [_conf()["intersphinx_mapping"]] and len(asked[0]) == 7
    out, err = capsys.readouterr()
    assert (
        err == "--fetch-inventories: gone: x failed\n" and out == "6 of 7 inventories written into book/_inventories/\n"
    )


def test_course_site_keeps_only_what_no_configuration_does_in_under_400_lines() -> None:
    lines = (BOOK / "_ext" / "course_site.py").read_text(encoding="utf-8").count("\n")
    assert lines < 400, f"book/_ext/course_site.py has {lines} lines"
    index = (BOOK / "index.md").read_text(encoding="utf-8")
    assert ":glob:\n:caption: Lessons\n\n/notebooks/[0-9][0-9]*" in index, "the lessons' toctree is Sphinx's glob"


def test_a_site_without_solutions_has_no_solution_and_no_guide_and_its_index_says_nothing_of_them(
    tmp_path: Path, site_builder: Builder
) -> None:
    source = _course(tmp_path)
    _notebook(source / "notebooks" / "00_a.ipynb", "00 · A", "print('a')")
    _notebook(source / "notebooks" / "solutions" / "00_a.ipynb", "00 · A", "print('answered')")
    (source / "docs").mkdir()
    agenda = f"{course_site_ext.AGENDA_START}\n{course_site_ext.AGENDA_END}"
    (source / "docs" / "instructor_guide.md").write_text(f"# Guide\n\n{agenda}\n", encoding="utf-8")
    out = tmp_path / "html"
    result = site_builder("--source", str(source), "--out", str(out), "--without-solutions", "--rerun")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["docname"] for row in manifest(out)["lessons"]] == ["notebooks/00_a"]
    assert not (out / "notebooks" / "solutions").exists() and not (out / "docs").exists()
    index = page_of(out, "book/index")
    captions = re.findall(r'<span class="caption-text">([^<]+)</span>', index)
    assert captions == ["Lessons", "Reference"] and "Solutions" not in index and "instructor" not in index.lower()
    assert broken_links(out) == []


def test_a_lesson_links_each_glossary_term_where_it_first_uses_it(course_site: Path) -> None:
    glossary = page_of(course_site, "book/glossary")
    page = page_of(course_site, "notebooks/01_grad_cam")
    article = page[page.index("<article") : page.index("</article>")]
    links = re.findall(r'<a class="[^"]*course-glossary-link[^"]*" href="([^"#]+)#([^"]+)">([^<]+)</a>', article)
    anchors = [anchor for _, anchor, _ in links]
    assert {"term-Grad-CAM", "term-Target-layer"} <= set(anchors) and len(anchors) == len(set(anchors)), anchors
    for path, anchor, _ in links:
        assert path == "../book/glossary.html" and f'id="{anchor}"' in glossary, f"{anchor} is no glossary entry"
    prose = re.sub(r"<(h[1-6]|pre|code)\b.*?</\1>", "", article, flags=re.S)  # headings and code left out
    first = re.search(r"(?<![\w-])grad-cam(?![\w-])", prose, flags=re.I)
    assert first and prose[: first.start()].endswith('#term-Grad-CAM">'), "the first Grad-CAM of the prose links"
    for tag in ("h1", "h2", "h3", "pre", "code"):
        inside = re.findall(rf"<{tag}\b[^>]*>(?:(?!</{tag}>).)*course-glossary-link", article, flags=re.S)
        assert inside == [], f"a glossary link inside <{tag}>"


def test_where_a_live_widget_would_be_the_page_says_so_and_loads_no_widget_code(
    tmp_path: Path, site_builder: Builder, offline_page: object
) -> None:
    source = _course(tmp_path)
    _notebook(source / "notebooks" / "00_w.ipynb", "00 · W", "import ipywidgets\nipywidgets.IntSlider()")
    out = tmp_path / "html"
    result = site_builder("--source", str(source), "--out", str(out), "--rerun")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "widget-view+json" in page_of(out, "notebooks/00_w") and "require.js" not in page_of(out, "notebooks/00_w")
    page = offline_page.page  # type: ignore[attr-defined]
    page.goto((out / "notebooks" / "00_w.html").as_uri())
    note = page.evaluate(
        """() => [...document.querySelectorAll('div.cell_output')]
                   .map(output => getComputedStyle(output, '::after').content)
                   .filter(content => content !== 'none')"""
    )
    assert note == ['"An interactive widget appears here when the notebook runs in JupyterLab (make lab)."'], note
