"""Render the course as a static site: every notebook executed, then converted to HTML by nbconvert.

``make html`` runs ``python scripts/build_site.py``, which

* executes every notebook under ``notebooks/`` with nbclient, with the model ``XAI_MODEL`` selects
  (loaded once first, so that every page names the same model): the lessons in filename order,
  then each subfolder (``solutions/``) as its own section;
* renders each with nbconvert's JupyterLab template (``scripts/site_templates/course``): figures
  embedded as PNG, a bar with the index and the previous and next page, and a line naming the model;
* writes ``index.html`` (the lessons in order, with titles and one-line summaries),
  ``instructor_guide.html`` (``docs/instructor_guide.md`` with an agenda measured by this build) and
  ``lessons.json`` (the measurements) into ``build/html/``.

A notebook that fails stops the build with its name, the cell's number and the cell's error, and
leaves no site behind: pages go to a staging folder that replaces the old site only when every page
is written and every link in it resolves. Nothing is downloaded at build time.

Options: ``--out DIR``, ``--only NAME`` (repeatable: build some lessons only, e.g. ``--only 00``),
``--without-solutions`` (a site to hand to learners: no solutions, no instructor guide) and
``--update-guide`` (also write the measured agenda into ``docs/instructor_guide.md``).
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import math
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
GUIDE = ROOT / "docs" / "instructor_guide.md"
README = ROOT / "README.md"
TEMPLATES = Path(__file__).resolve().parent / "site_templates"
DEFAULT_OUT = ROOT / "build" / "html"

CELL_TIMEOUT_S = 600
"""A cell running longer than this fails the build (as in the test suite)."""
PROSE_WORDS_PER_MINUTE = 150
"""Reading speed for the lessons' prose: below the 200-250 words a minute usual for plain prose,
because this prose is technical and is read next to code and figures."""
CODE_LINES_PER_MINUTE = 10
"""Reading speed for code: a learner reads a line of code, and checks what it does, in about 6 s."""
SLOT_STEP_MINUTES = 5
"""Agenda slots are rounded up to this."""
AGENDA_START = "<!-- agenda:start -->"
AGENDA_END = "<!-- agenda:end -->"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LINK = re.compile(r"(\]\()([^)\s]+)(\))")
_STATED_MINUTES = re.compile(r"about (\d+) minutes")


class SiteBuildError(RuntimeError):
    """The site could not be built; the message names the notebook (or page) and the problem."""


# --- what the site is made of ------------------------------------------------------------------


@dataclass(frozen=True)
class Lesson:
    """A notebook of the course and where its page goes."""

    source: Path
    """The notebook file."""
    page: str
    """Its page, relative to the site's root: ``01_grad_cam.html``, ``solutions/04_x.html``."""
    section: str
    """``"Lessons"`` for the notebooks in ``notebooks/``, else the subfolder's name (``"Solutions"``)."""


def page_for(notebook: Path | PurePosixPath, notebooks_dir: Path | PurePosixPath) -> str:
    """The site page of a notebook: its path under ``notebooks_dir``, with ``.html``.

    >>> page_for(PurePosixPath("nb/solutions/04_x.ipynb"), PurePosixPath("nb"))
    'solutions/04_x.html'
    """
    return PurePosixPath(notebook).relative_to(PurePosixPath(notebooks_dir)).with_suffix(".html").as_posix()


def find_lessons(notebooks_dir: Path = NOTEBOOKS) -> list[Lesson]:
    """Every notebook under ``notebooks_dir``: the top level by filename, then each subfolder by name.

    Nothing to register: a new lesson is found by its file name (``07_...ipynb``).
    """
    notebooks = [p for p in notebooks_dir.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    if not notebooks:
        raise SiteBuildError(f"no notebooks under {notebooks_dir}; run the build from the course's repository.")

    def order(path: Path) -> tuple[int, str]:
        relative = path.relative_to(notebooks_dir)
        return (len(relative.parts) > 1, relative.as_posix())

    lessons = []
    for path in sorted(notebooks, key=order):
        relative = path.relative_to(notebooks_dir)
        section = "Lessons" if len(relative.parts) == 1 else relative.parts[0].replace("_", " ").capitalize()
        lessons.append(Lesson(source=path, page=page_for(path, notebooks_dir), section=section))
    return lessons


@dataclass(frozen=True)
class Outline:
    """What a notebook says about itself, and how much there is to read."""

    title: str
    """The first ``# `` heading."""
    summary: str
    """One line: the first thing the lesson says a learner will be able to do."""
    stated_minutes: int | None
    """The lesson's own "about N minutes", when it gives one."""
    prose_words: int
    """Words in the markdown cells (tokens with a letter or digit; markup alone does not count)."""
    code_lines: int
    """Non-empty lines in the code cells."""


def outline(nb: NotebookNode, fallback_title: str = "Untitled") -> Outline:
    """Title, one-line summary, stated time and reading length of a notebook.

    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_markdown_cell("# 01 · Grad-CAM\\n\\n**Able to do (about 25 minutes):**\\n\\n"
    ...                                   "- write Grad-CAM\\n  from scratch;\\n- check it."),
    ...     nbformat.v4.new_code_cell("import torch\\n\\nx = torch.ones(3)")])
    >>> outline(nb)
    Outline(title='01 · Grad-CAM', summary='Write Grad-CAM from scratch.', stated_minutes=25, prose_words=14, code_lines=2)
    """
    markdown = [cell.source for cell in nb.cells if cell.cell_type == "markdown"]
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    lines = "\n".join(markdown).splitlines()
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), fallback_title)
    first = markdown[0] if markdown else ""
    bullets: list[str] = []
    for line in first.splitlines():
        if line.startswith(("- ", "* ")):
            bullets.append(line[2:])
        elif bullets and line[:1].isspace() and line.strip():  # a bullet's continuation line
            bullets[-1] += " " + line.strip()
    paragraphs = [p.strip() for p in first.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
    summary = bullets[0] if bullets else (paragraphs[0] if paragraphs else "")
    summary = " ".join(summary.split()).rstrip(";:,.")
    summary = summary[:1].upper() + summary[1:] + "." if summary else ""
    stated = _STATED_MINUTES.search(first)
    return Outline(
        title=title,
        summary=summary,
        stated_minutes=int(stated[1]) if stated else None,
        prose_words=sum(1 for text in markdown for token in text.split() if any(ch.isalnum() for ch in token)),
        code_lines=sum(1 for text in code for line in text.splitlines() if line.strip()),
    )


@dataclass(frozen=True)
class Report:
    """One page of the site after its notebook ran: what ``lessons.json`` and the agenda hold."""

    notebook: str
    """Path relative to the repository."""
    page: str
    section: str
    title: str
    summary: str
    stated_minutes: int | None
    prose_words: int
    code_lines: int
    run_seconds: float
    """Wall time of executing the whole notebook, kernel start included."""
    figures: int
    """PNG outputs on the page."""
    estimate_minutes: float
    slot_minutes: int


def estimate_minutes(prose_words: int, code_lines: int, run_seconds: float) -> float:
    """Reading (``PROSE_WORDS_PER_MINUTE``, ``CODE_LINES_PER_MINUTE``) plus running, in minutes.

    >>> estimate_minutes(1500, 100, 60.0)
    21.0
    """
    return prose_words / PROSE_WORDS_PER_MINUTE + code_lines / CODE_LINES_PER_MINUTE + run_seconds / 60


def slot_minutes(estimate: float, stated: int | None) -> int:
    """The agenda slot: the larger of the estimate and the lesson's own figure, rounded up to 5 minutes.

    >>> slot_minutes(21.0, 20), slot_minutes(12.5, 30), slot_minutes(3.2, None)
    (25, 30, 5)
    """
    longest = max(estimate, stated or 0)
    return max(SLOT_STEP_MINUTES, SLOT_STEP_MINUTES * math.ceil(longest / SLOT_STEP_MINUTES - 1e-9))


# --- executing ---------------------------------------------------------------------------------


def execute(lesson: Lesson, env: Mapping[str, str], timeout: int = CELL_TIMEOUT_S) -> tuple[NotebookNode, float]:
    """Execute the lesson's notebook in its folder; return it with outputs (the file is never written) and the seconds.

    Raises ``SiteBuildError`` naming the notebook, the cell's number (1-based, counting every cell)
    and the error. Cells tagged ``raises-exception`` may raise, as in the test suite.
    """
    nb = nbformat.read(lesson.source, as_version=4)
    current = {"index": -1}

    def on_cell_execute(cell: NotebookNode, cell_index: int) -> None:
        current["index"] = cell_index

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(lesson.source.parent)}},
        on_cell_execute=on_cell_execute,
        store_widget_state=True,
    )
    start = time.perf_counter()
    try:
        client.execute(env=dict(env))
    except Exception as error:  # cell errors, timeouts, a dead kernel: all end the build
        where = f"cell {current['index'] + 1}" if current["index"] >= 0 else "kernel start"
        detail = _ANSI.sub("", str(error)).strip() or type(error).__name__
        raise SiteBuildError(f"{_relative(lesson.source)}: {where} failed ({type(error).__name__}):\n{detail}") from None
    return nb, time.perf_counter() - start


def count_figures(nb: NotebookNode) -> int:
    """PNG outputs of an executed notebook (each becomes an ``<img>`` on its page).

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
    ...     nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})])])
    >>> count_figures(nb)
    1
    """
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


# --- rendering ---------------------------------------------------------------------------------


def relative_href(target_page: str, from_page: str) -> str:
    """A link from one page of the site to another.

    >>> relative_href("01_grad_cam.html", "solutions/04_x.html")
    '../01_grad_cam.html'
    >>> relative_href("solutions/04_x.html", "index.html")
    'solutions/04_x.html'
    """
    return os.path.relpath(target_page, start=os.path.dirname(from_page) or ".").replace(os.sep, "/")


def rewrite_links(markdown: str, source: Path, page: str, notebooks_dir: Path) -> str:
    """Point markdown links to notebooks (``01_grad_cam.ipynb``) at their pages on the site.

    ``source`` is the file the markdown comes from (relative links are relative to it), ``page``
    the page it becomes. Other links are left as they are.

    >>> rewrite_links("[next](01_a.ipynb#top), [web](https://x.org/a.ipynb)", Path("/c/nb/00.ipynb"),
    ...               "00.html", Path("/c/nb"))
    '[next](01_a.html#top), [web](https://x.org/a.ipynb)'
    """

    def replace(match: re.Match[str]) -> str:
        parts = urlsplit(match[2])
        if parts.scheme or parts.netloc or not parts.path.endswith(".ipynb"):
            return match[0]
        target = Path(os.path.normpath(source.parent / parts.path))
        if notebooks_dir not in target.parents:
            return match[0]
        href = relative_href(page_for(target, notebooks_dir), page)
        return f"{match[1]}{href}{'#' + parts.fragment if parts.fragment else ''}{match[3]}"

    return _LINK.sub(replace, markdown)


def markdown_notebook(markdown: str, title: str) -> NotebookNode:
    """A one-cell notebook, so that the index and the guide are rendered like the lessons."""
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(markdown)], metadata={"title": title})


class _Exporter:
    """nbconvert's HTML exporter with the course template, and the course bar for each page."""

    def __init__(self, banner: str, reports: Sequence[Report]) -> None:
        self.exporter = HTMLExporter(template_name="course", extra_template_basedirs=[str(TEMPLATES)])
        self.banner = banner
        self.reports = list(reports)

    def render(self, nb: NotebookNode, page: str) -> str:
        """The page's HTML; a lesson links to the previous and next page of its own section."""
        at = next((i for i, r in enumerate(self.reports) if r.page == page), None)
        neighbour = {}
        for key, step in (("previous", -1), ("next", 1)):
            if at is None or not 0 <= at + step < len(self.reports):
                continue
            other = self.reports[at + step]
            if other.section == self.reports[at].section:
                neighbour[key] = {"href": relative_href(other.page, page), "title": other.title}
        course = {"index": relative_href("index.html", page), "banner": self.banner, **neighbour}
        body, _ = self.exporter.from_notebook_node(nb, resources={"course": course})
        return body


def model_banner(name: str, description: str, built: datetime) -> str:
    """The line on every page that says which model produced the figures (HTML).

    >>> model_banner("squeezenet1_1", "SqueezeNet 1.1", datetime(2026, 1, 2, tzinfo=timezone.utc))
    'Figures on this site were produced by <b>SqueezeNet 1.1</b> (<code>XAI_MODEL=squeezenet1_1</code>), built 2026-01-02.'
    """
    return (
        f"Figures on this site were produced by <b>{html.escape(description)}</b> "
        f"(<code>XAI_MODEL={html.escape(name)}</code>), built {built:%Y-%m-%d}."
    )


def index_markdown(
    course_title: str, reports: Sequence[Report], model_name: str, built: datetime, *, guide: bool = True
) -> str:
    """The index page: each section's pages in order, with title, summary and time (and the guide, if built)."""
    parts = [
        f"# {course_title}",
        "The whole course, executed and rendered: read it here with nothing installed. To run it yourself, "
        "see the repository's README (`make lab`).",
    ]
    for section in dict.fromkeys(r.section for r in reports):
        parts.append(f"## {section}")
        if section != "Lessons":
            parts.append("Answered versions of the lessons' exercises. Give them out after the exercise, not before.")
        items = []
        for r in (r for r in reports if r.section == section):
            stated = f"about {r.stated_minutes} minutes; " if r.stated_minutes else ""
            figures = f"{r.figures} figure{'s' * (r.figures != 1)}"
            items.append(f"- **[{r.title}]({r.page})**: {r.summary} *({stated}{figures}; runs in {r.run_seconds:.0f} s)*")
        parts.append("\n".join(items))
    if guide:
        parts += [
            "## For instructors",
            "[The instructor guide](instructor_guide.html): the agenda with times measured by this build, what to "
            "prepare, where learners get stuck, and how to hand out the challenge.",
        ]
    parts += [
        "## How this site was made",
        f"`make html` executed every notebook with `XAI_MODEL={model_name}` on {built:%Y-%m-%d} "
        f"(Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPU cores) and rendered it "
        "with nbconvert. Run times are from that machine.",
    ]
    return "\n\n".join(parts) + "\n"


def agenda_markdown(reports: Sequence[Report], model_name: str, links_from: Path = GUIDE.parent) -> str:
    """The agenda table: a slot per lesson, its start from the beginning, and how each was derived.

    Lessons are linked as notebooks, relative to ``links_from`` (the guide's folder), so that the
    links work in the repository; the site build points them at the pages.
    """
    rows = [
        "| Starts at | Lesson | Prose (words) | Code (lines) | Runs in | Reading + running | Lesson says | Slot |",
        "|---|---|---|---|---|---|---|---|",
    ]
    elapsed = 0
    for r in (r for r in reports if r.section == "Lessons"):
        stated = f"{r.stated_minutes} min" if r.stated_minutes else "-"
        rows.append(
            f"| {elapsed // 60}:{elapsed % 60:02d} | [{r.title}]({_link(r.notebook, links_from)}) "
            f"| {r.prose_words} | {r.code_lines} | {r.run_seconds:.0f} s | {r.estimate_minutes:.0f} min "
            f"| {stated} | {r.slot_minutes} min |"
        )
        elapsed += r.slot_minutes
    rows.append(f"| {elapsed // 60}:{elapsed % 60:02d} | **End** (without breaks) | | | | | | |")
    how = (
        f"*How the times are derived:* `make html` counts each lesson's words of prose and non-empty lines of "
        f"code and measures how long the whole notebook takes to execute (`XAI_MODEL={model_name}`, "
        f"{os.cpu_count()} CPU cores). Reading + running = words / {PROSE_WORDS_PER_MINUTE} + lines / "
        f"{CODE_LINES_PER_MINUTE} + run time, in minutes. *Lesson says* is the lesson's own \"about N minutes\", "
        f"which includes thinking and typing that reading cannot measure. The slot is the larger of the two, rounded "
        f"up to {SLOT_STEP_MINUTES} minutes. Solutions are not on the agenda."
    )
    return "\n".join(rows) + "\n\n" + how


def with_agenda(guide: str, agenda: str) -> str:
    """The guide's text with the block between the agenda markers replaced by ``agenda``.

    >>> with_agenda("a\\n<!-- agenda:start -->\\nold\\n<!-- agenda:end -->\\nb", "new")
    'a\\n<!-- agenda:start -->\\nnew\\n<!-- agenda:end -->\\nb'
    """
    start, end = guide.find(AGENDA_START), guide.find(AGENDA_END)
    if start < 0 or end < start:
        raise SiteBuildError(
            f"the instructor guide has no '{AGENDA_START}' ... '{AGENDA_END}' block; add one where the agenda goes."
        )
    return f"{guide[: start + len(AGENDA_START)]}\n{agenda}\n{guide[end:]}"


# --- checking links ----------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("href", "src") and value]


def local_links(page_html: str) -> list[str]:
    """The page's links and image sources that point inside the site (no scheme, no data URI, no bare anchor).

    >>> local_links('<a href="a.html#x">a</a> <img src="data:image/png;base64,AA"> '
    ...             '<a href="https://x.org">x</a> <a href="#y">y</a>')
    ['a.html#x']
    """
    parser = _Links()
    parser.feed(page_html)
    return [link for link in parser.found if not urlsplit(link).scheme and not link.startswith(("#", "//"))]


def broken_links(site: Path, allowed: Iterable[str] = ()) -> list[str]:
    """``page -> link`` for every local link in the site's pages whose target is missing.

    ``allowed`` names pages that may be missing (lessons left out of a partial build).
    """
    allowed = set(allowed)
    broken = []
    for page in sorted(site.rglob("*.html")):
        for link in local_links(page.read_text(encoding="utf-8")):
            target = (page.parent / urlsplit(link).path).resolve()
            relative = os.path.relpath(target, site.resolve()).replace(os.sep, "/")
            if not target.exists() and relative not in allowed:
                broken.append(f"{page.relative_to(site).as_posix()} -> {link}")
    return broken


# --- the build ---------------------------------------------------------------------------------


def build_site(
    lessons: Sequence[Lesson],
    out_dir: Path,
    *,
    model_name: str,
    model_description: str,
    notebooks_dir: Path = NOTEBOOKS,
    guide: Path | None = GUIDE,
    course_title: str = "The course",
    env: Mapping[str, str] | None = None,
) -> list[Report]:
    """Execute ``lessons``, render them with the index and the guide into ``out_dir``, and return the reports.

    The kernels run with ``XAI_MODEL=model_name``. ``out_dir`` (empty, or a site built here before)
    is removed first and appears only when the whole site is written and its links resolve; on any
    failure there is no ``out_dir`` and ``SiteBuildError`` says why.
    """
    if not lessons:
        raise SiteBuildError("no lessons to build; check --only.")
    out_dir = out_dir.resolve()
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "lessons.json").is_file():
        raise SiteBuildError(f"{out_dir} is not empty and holds no site built here (no lessons.json); choose another --out.")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    kernel_env = {**(os.environ if env is None else env), "XAI_MODEL": model_name}
    built = datetime.now(timezone.utc)
    try:
        executed = []
        for lesson in lessons:
            print(f"executing {_relative(lesson.source)} ...", flush=True)
            nb, seconds = execute(lesson, kernel_env)
            print(f"  done in {seconds:.1f} s", flush=True)
            executed.append((lesson, nb, seconds))

        reports = []
        for lesson, nb, seconds in executed:
            o = outline(nb, fallback_title=lesson.source.stem)
            estimate = estimate_minutes(o.prose_words, o.code_lines, seconds)
            reports.append(Report(
                notebook=_relative(lesson.source), page=lesson.page, section=lesson.section, title=o.title,
                summary=o.summary, stated_minutes=o.stated_minutes, prose_words=o.prose_words,
                code_lines=o.code_lines, run_seconds=round(seconds, 1), figures=count_figures(nb),
                estimate_minutes=round(estimate, 1), slot_minutes=slot_minutes(estimate, o.stated_minutes),
            ))

        exporter = _Exporter(model_banner(model_name, model_description, built), reports)
        for (lesson, nb, _), report in zip(executed, reports):
            nb = copy.deepcopy(nb)
            nb.metadata["title"] = report.title
            for cell in nb.cells:
                if cell.cell_type == "markdown":
                    cell.source = rewrite_links(cell.source, lesson.source, lesson.page, notebooks_dir)
            _write(staging / lesson.page, exporter.render(nb, lesson.page))

        index = index_markdown(course_title, reports, model_name, built, guide=guide is not None)
        _write(staging / "index.html", exporter.render(markdown_notebook(index, course_title), "index.html"))
        if guide is not None:
            text = with_agenda(guide.read_text(encoding="utf-8"), agenda_markdown(reports, model_name, guide.parent))
            text = rewrite_links(text, guide, "instructor_guide.html", notebooks_dir)
            page = exporter.render(markdown_notebook(text, "Instructor guide"), "instructor_guide.html")
            _write(staging / "instructor_guide.html", page)
        manifest = {"model": model_name, "model_description": model_description, "built": built.isoformat(),
                    "cpu_cores": os.cpu_count(), "lessons": [asdict(r) for r in reports]}
        _write(staging / "lessons.json", json.dumps(manifest, indent=2) + "\n")

        known = [page_for(p, notebooks_dir) for p in notebooks_dir.rglob("*.ipynb")]
        broken = broken_links(staging, allowed=known)
        if broken:
            raise SiteBuildError("links that lead nowhere on the site:\n  " + "\n  ".join(broken))
        staging.rename(out_dir)
        return reports
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _link(notebook: str, links_from: Path) -> str:
    return os.path.relpath(ROOT / notebook, links_from).replace(os.sep, "/")


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def course_title(readme: Path = README) -> str:
    """The README's first heading, the course's name."""
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return "The course"


def select(lessons: Sequence[Lesson], only: Sequence[str], without_solutions: bool) -> list[Lesson]:
    """The lessons ``--only`` names (a prefix of the file name, or its path under ``notebooks/``).

    >>> lessons = [Lesson(Path("nb/00_a.ipynb"), "00_a.html", "Lessons"),
    ...            Lesson(Path("nb/solutions/04_b.ipynb"), "solutions/04_b.html", "Solutions")]
    >>> [l.page for l in select(lessons, ["00"], False)], [l.page for l in select(lessons, [], True)]
    (['00_a.html'], ['00_a.html'])
    """
    chosen = [
        lesson for lesson in lessons
        if not only or any(lesson.source.name.startswith(name) or lesson.page.startswith(name) for name in only)
    ]
    return [lesson for lesson in chosen if not (without_solutions and lesson.section != "Lessons")]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python scripts/build_site.py [--out DIR] [--only NAME ...] [--without-solutions] [--update-guide]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the site goes (default: build/html)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="build only these lessons (file-name prefix), e.g. --only 00")
    parser.add_argument("--without-solutions", action="store_true",
                        help="leave out notebooks/solutions/ and the instructor guide (a site for learners)")
    parser.add_argument("--update-guide", action="store_true",
                        help="also write the measured agenda into docs/instructor_guide.md")
    args = parser.parse_args(argv)
    if args.update_guide and (args.only or args.without_solutions):
        parser.error("--update-guide needs the whole course; leave out --only and --without-solutions.")

    from utils.models import ModelUnavailableError, load_model  # imported here: only the build needs torch

    try:
        loaded = load_model(device="cpu")
    except (ModelUnavailableError, ValueError) as error:
        print(f"make html: {error}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    try:
        lessons = select(find_lessons(), args.only, args.without_solutions)
        print(f"building {len(lessons)} pages with the model {loaded.name} into {args.out}", flush=True)
        reports = build_site(lessons, args.out, model_name=loaded.name, model_description=loaded.description,
                             course_title=course_title(), guide=None if args.without_solutions else GUIDE)
    except SiteBuildError as error:
        print(f"make html failed, no site was written: {error}", file=sys.stderr)
        return 1
    if args.update_guide:
        GUIDE.write_text(with_agenda(GUIDE.read_text(encoding="utf-8"), agenda_markdown(reports, loaded.name)), encoding="utf-8")
        print(f"agenda written into {_relative(GUIDE)}")
    print(f"site ready in {time.perf_counter() - start:.0f} s: {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
