"""The course's home page (``book/index.md``), as a Sphinx extension beside ``course_site``.

The sidebar's entries are the index's own glob toctrees (``notebooks/[0-9][0-9]*``: a new lesson needs no
configuration); this writes, where the index says ``<!-- course:contents -->``, what a toctree cannot show: each
lesson and solution with the README's description of it, its stated time, its figures and its run time in this
build; then the instructor guide and the API reference, where this build has them, and how the site was made.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from course_site import GUIDE, SECTIONS, Page, md_link, pages_read
from sphinx.application import Sphinx

CONTENTS_MARKER = "<!-- course:contents -->"
API = "book/api/index"
SOLUTIONS_NOTE = "Answered versions of the lessons' exercises. Give them out after the exercise, not before."
_README_ROW = re.compile(r"^\| \d\d \| \[[^\]]*\]\(notebooks/([^)]+\.ipynb)\)[^|]* \| (.+?) \|\s*$", re.M)
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def readme_summaries(readme: str) -> dict[str, str]:
    """Each lesson's description in the README's lessons table, by notebook file name, each link replaced by its
    text (its target is relative to the README, not to the index).

    >>> rows = ["| 00 | [`n`](notebooks/00_a.ipynb) | Load [it](x.md). |", "| 01 | [x](notebooks/01_b.ipynb) (o) | B |"]
    >>> readme_summaries("\\n".join(rows))
    {'00_a.ipynb': 'Load it.', '01_b.ipynb': 'B'}
    """
    return {name: _MARKDOWN_LINK.sub(r"\1", text.strip()) for name, text in _README_ROW.findall(readme)}


def page_item(page: Page, summary: str, from_doc: str) -> str:
    """A page's line in the index: its title as a link, the README's description, its time and figures.

    >>> page = Page("01 · A", 20, 900, 40, docname="notebooks/01_a", executed=True, run_seconds=12.3, figures=1)
    >>> page_item(page, "Do A.", "book/index")
    '- **[01 · A](<../notebooks/01_a.ipynb>)**: Do A. *(about 20 minutes; 1 figure; runs in 12 s)*'
    """
    stated = f"about {page.stated_minutes} minutes; " if page.stated_minutes else ""
    ran = f"runs in {page.run_seconds:.0f} s" if page.executed and page.run_seconds else "not executed in this build"
    figures = f"{page.figures} figure{'s' * (page.figures != 1)}"
    described = f": {summary}" if summary else ""
    return f"- **{md_link(page.title, page.docname + '.ipynb', from_doc)}**{described} *({stated}{figures}; {ran})*"


def contents_markdown(
    pages: Sequence[Page],
    summaries: Mapping[str, str],
    from_doc: str,
    *,
    guide: bool,
    api: bool,
    model_name: str,
    built: datetime,
) -> str:
    """The index's body: each section's pages (``page_item``), the guide and the API reference (when this build has
    them), how the site was made."""
    parts = []
    for section, _ in SECTIONS:
        listed = [
            page_item(p, summaries.get(Path(p.notebook).name, ""), from_doc) for p in pages if p.section == section
        ]
        if listed:
            parts += [f"## {section}", *([SOLUTIONS_NOTE] if section != "Lessons" else []), "\n".join(listed)]
    if guide:
        parts += [
            "## For instructors",
            f"{md_link('The instructor guide', GUIDE + '.md', from_doc)}: the agenda with times measured by this "
            "build, what to prepare, where learners get stuck, and how to hand out the challenge.",
        ]
    if api:
        parts += [
            "## The package's API",
            f"{md_link('The API reference of utils', API + '.md', from_doc)}: every helper the lessons import, one "
            "page per module, each entry with its signature and a worked example.",
        ]
    made = (
        f"`make html` executed the notebooks with `XAI_MODEL={model_name}` on {built:%Y-%m-%d} (Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPU cores) and rendered them with "
        "Sphinx, MyST-NB and sphinx-book-theme (Jupyter Book's engine). Run times are from that machine. Each "
        "lesson's page has a download button (top right) for its notebook."
    )
    return "\n\n".join([*parts, "## How this site was made", made]) + "\n"


def write_contents(app: Sphinx, docname: str, source: list[str]) -> None:
    """Fill the index's contents from the notebooks already read (``course_site`` reads them first)."""
    if docname != app.config.root_doc or CONTENTS_MARKER not in source[0]:
        return
    readme = Path(app.srcdir, "README.md")
    summaries = readme_summaries(readme.read_text(encoding="utf-8")) if readme.is_file() else {}
    name, _, built = app.course_model  # type: ignore[attr-defined]
    found = app.env.found_docs
    body = contents_markdown(
        pages_read(app.env), summaries, docname, guide=GUIDE in found, api=API in found, model_name=name, built=built
    )
    source[0] = source[0].replace(CONTENTS_MARKER, body)


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("course_site")
    app.connect("source-read", write_contents)
    return {"version": "1.0", "parallel_read_safe": False, "parallel_write_safe": True}
