"""Build the course's site with Sphinx into a staging folder, and put it in place only when the build succeeded.

``make html`` runs ``python book/build.py``: Sphinx, with MyST-NB executing every notebook and
sphinx-book-theme drawing the pages (configuration in ``book/conf.py``, the course's own part in
``book/_ext/``). Any warning fails the build (a link that leads nowhere, a notebook
missing from the table of contents), and so does a failing cell, with the notebook and the cell
named. The pages are written into ``.<out>.staging/`` next to ``--out``; only a build that succeeded
replaces the previous site, so a failed build leaves the previous site as it was and no partial
site behind; a build that succeeded replaces ``--out`` whole (files put there by hand are removed).

Options: ``--out DIR`` (default build/html), ``--only NAME`` (repeatable: execute only these
notebooks, e.g. ``--only 00``; the others are pages without outputs, so every link still
resolves), ``--without-solutions`` (a site for learners: no solutions, no instructor guide),
``--rerun`` (execute every notebook even when MyST-NB's cache holds its outputs, to re-measure the
agenda), ``--update-guide`` (also write the measured agenda into docs/instructor_guide.md),
``--recount-guide`` (only recount the agenda's words, lines and stated times, executing nothing),
``--fetch-inventories`` (only download the libraries' intersphinx inventories into book/_inventories/, where there is
internet; the build itself never fetches) and ``--source DIR`` (another folder of pages beside the same
configuration; the tests use it).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import runpy
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass, replace
from pathlib import Path

import nbformat

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
DEFAULT_OUT = ROOT / "build" / "html"
GUIDE_FILE = ROOT / "docs" / "instructor_guide.md"
MANIFEST = "lessons.json"
"""Every site built here holds this file; a folder without it is never replaced."""


class SiteBuildError(RuntimeError):
    """The site was not built; the message says why (and the previous site, if any, is untouched)."""


def configuration() -> dict[str, object]:
    """``book/conf.py``'s settings, as Sphinx reads them."""
    return runpy.run_path(str(BOOK / "conf.py"))


class _Quieter(logging.Filter):
    """Drops MyST's and MyST-NB's dump of their whole configuration (a record whose last argument is a dataclass),
    the lines that name the staging folder (a theme file written there, MyST-NB's cache in it), and the warning that
    one of the index's glob toctrees matched nothing: the index lists what there is (the hand-out has no solutions,
    ``--without-solutions`` no guide), and Sphinx gives that warning no type that ``suppress_warnings`` could name."""

    LOGGERS = (
        "sphinx.myst_parser.sphinx_ext.main",
        "sphinx.myst_nb.sphinx_ext",
        "sphinx.sphinx.util.fileutil",
        "sphinx.sphinx.directives.other",
    )
    STAGING = ("Writing evaluated template result", "Using jupyter-cache at")

    def filter(self, record: logging.LogRecord) -> bool:
        dump = isinstance(record.args, tuple) and record.args and is_dataclass(record.args[-1])
        empty_glob = getattr(record, "subtype", None) == "empty_glob"
        return not dump and not empty_glob and not str(record.msg).startswith(self.STAGING)


def overrides_for(source: Path, only: Sequence[str], without_solutions: bool, rerun: bool) -> dict[str, object]:
    """The configuration a build's options change: which notebooks execute (``--only``: the others are still pages,
    so that links resolve), which pages exist (``--without-solutions``), whether the cache is used (``--rerun``).

    >>> overrides_for(Path("/c"), [], False, True)
    {'nb_execution_mode': 'force'}
    """
    overrides: dict[str, object] = {}
    if only:
        prefixes = tuple(name if name.startswith("notebooks/") else f"notebooks/{name}" for name in only)
        notebooks = (p.relative_to(source).as_posix() for p in sorted(source.glob("notebooks/**/*.ipynb")))
        overrides["nb_execution_excludepatterns"] = [n for n in notebooks if not n.startswith(prefixes)]
    if without_solutions:
        extra = ["notebooks/solutions", "notebooks/solutions/**", "docs/instructor_guide.md"]
        overrides["exclude_patterns"] = [*configuration()["exclude_patterns"], *extra]  # type: ignore[misc]
    if rerun:
        overrides["nb_execution_mode"] = "force"
    return overrides


def staging_for(out: Path) -> Path:
    """The folder a build of ``out`` writes into before it replaces ``out``.

    >>> staging_for(Path("/c/build/html")).as_posix()
    '/c/build/.html.staging'
    """
    return out.with_name(f".{out.name}.staging")


def replace_site(new: Path, out: Path) -> None:
    """Put the finished site ``new`` at ``out``, removing the previous one only once ``new`` is in place."""
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _failure(error: BaseException, source: Path) -> str:
    """What failed: a notebook's cell (MyST-NB's ``ExecutionError``), the course's own error, else the exception."""
    from course_site import CourseSiteError
    from myst_nb.core.execute.base import ExecutionError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, CourseSiteError):
            return seen.message if hasattr(seen, "message") else str(seen)
        if isinstance(seen, ExecutionError):
            return notebook_failure(Path(str(seen)), seen.__cause__, source)
        seen = getattr(seen, "orig_exc", None) or seen.__cause__ or seen.__context__
    return f"{type(error).__name__}: {error}"


def notebook_failure(path: Path, cause: BaseException | None, source: Path) -> str:
    """The notebook, the cell that failed and its error, from what nbclient raised (``cause``)."""
    traceback = str(cause or "")
    nb = nbformat.read(path, as_version=4)
    index = cell_named_in(traceback, nb)
    cell = nb.cells[index].source if index is not None else ""
    error = getattr(cause, "ename", None) or error_name(traceback, type(cause).__name__)
    label = path.relative_to(source).as_posix() if path.is_relative_to(source) else str(path)
    after_cell = traceback.split("------------------", 2)[-1]  # nbclient quotes the cell between two rules
    return failure_message(label, index, error, cell, after_cell)


def cell_named_in(traceback: str, nb: nbformat.NotebookNode) -> int | None:
    """The cell whose source nbclient quotes in its error (a timeout or a dead kernel leaves no error output).

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("x / 0")])
    >>> cell_named_in("An error occurred while executing the following cell:\\n------------------\\nx / 0\\n---", nb)
    1
    """
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.strip() and f"\n{cell.source.strip()}\n" in traceback:
            return index
    return None


def failure_message(notebook: str, cell_index: int | None, error: str, source: str, traceback: str) -> str:
    """One line naming the notebook, the cell (1-based, counting every cell) and the error; the cell; its traceback.

    >>> error = "ZeroDivisionError: division by zero"
    >>> print(failure_message("notebooks/01_x.ipynb", 2, "ZeroDivisionError", "x / 0", error))
    notebooks/01_x.ipynb: cell 3 failed (ZeroDivisionError):
        x / 0
    ZeroDivisionError: division by zero
    """
    where = f"cell {cell_index + 1}" if cell_index is not None else "a cell"
    quoted = "\n".join("    " + line for line in source.strip().splitlines())
    tail = "\n".join(_ANSI.sub("", traceback).strip().splitlines()[-25:])
    return f"{notebook}: {where} failed ({error}):\n{quoted}\n{tail}".replace("\n\n", "\n")


def error_name(traceback: str, fallback: str) -> str:
    """The exception's name from the traceback's last line (``ZeroDivisionError: ...``), else ``fallback``.

    >>> error_name("Traceback...\\nZeroDivisionError: division by zero", "CellExecutionError")
    'ZeroDivisionError'
    """
    for line in reversed(_ANSI.sub("", traceback).strip().splitlines()):
        match = re.match(r"([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Warning)\b)", line.strip())
        if match:
            return match[1]
    return fallback


def check_notebook(path: Path) -> None:
    """Refuse, naming the notebook, one that cannot be read, names a kernel not installed here, or has no title."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several kinds (JSON, schema, version): each means the same here
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SiteBuildError(f"{path}: not a notebook that can be read ({first}); fix or remove it.") from None
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    known = KernelSpecManager().find_kernel_specs()
    if kernel is not None and kernel not in known:
        raise SiteBuildError(
            f"{path}: its kernel {kernel!r} is not installed here (installed: {', '.join(sorted(known))}); "
            "choose one of those in JupyterLab (Kernel > Change Kernel) and save."
        )
    headings = (line for cell in nb.cells if cell.cell_type == "markdown" for line in cell.source.splitlines())
    if not any(line.startswith("# ") for line in headings):
        raise SiteBuildError(f"{path}: no title; start its first markdown cell with a '# ' heading (the page's name).")


def build(
    out: Path = DEFAULT_OUT,
    *,
    source: Path = ROOT,
    only: Sequence[str] = (),
    without_solutions: bool = False,
    rerun: bool = False,
    quiet: bool = False,
) -> dict[str, object]:
    """Build the site from ``source`` into ``out``; return the built site's ``lessons.json`` content.

    Raises ``SiteBuildError`` when the build fails; ``out`` is then exactly as it was before.
    """
    import json

    from sphinx.application import Sphinx

    sys.path.insert(0, str(BOOK / "_ext"))
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise SiteBuildError(f"--out {out} is a file; give a folder for the site (default build/html).")
    for name in only:
        pattern = name if name.startswith("notebooks/") else f"notebooks/{name}"
        if not list(source.glob(f"{pattern}*.ipynb")) and not list(source.glob(f"{pattern}*/*.ipynb")):
            raise SiteBuildError(
                f"--only {name} matches no notebook under notebooks/ (give a lesson's number: --only 00)."
            )
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise SiteBuildError(f"{out} is not empty and holds no site built here (no {MANIFEST}); choose another --out.")
    for notebook in sorted((source / "notebooks").rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in notebook.parts:
            check_notebook(notebook)
    staging = staging_for(out)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    overrides = overrides_for(source, only, without_solutions, rerun)
    for logger in map(logging.getLogger, _Quieter.LOGGERS):
        if not any(isinstance(known, _Quieter) for known in logger.filters):  # once, however many builds run here
            logger.addFilter(_Quieter())
    try:
        try:
            app = Sphinx(
                srcdir=source,
                confdir=BOOK,
                outdir=staging / "html",
                doctreedir=staging / "doctrees",
                buildername="html",
                confoverrides=overrides,
                freshenv=True,
                warningiserror=True,
                status=None if quiet else sys.stdout,
                warning=sys.stderr,
            )
            app.builder.epilog = ""  # no "The HTML pages are in <staging folder>": main() says where the site is
            app.build(force_all=True)
        except Exception as error:  # Sphinx wraps what the extensions raise: report the course's own message
            raise SiteBuildError(_failure(error, source.resolve())) from None
        if app.statuscode != 0:
            raise SiteBuildError(f"Sphinx reported {app._warncount} warning(s), listed above; each fails the build.")
        manifest = json.loads((staging / "html" / MANIFEST).read_text(encoding="utf-8"))
        replace_site(staging / "html", out)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def update_guide(manifest: dict[str, object], guide: Path = GUIDE_FILE) -> None:
    """Write the agenda of a whole-course build into the repository's guide."""
    from course_site import Page, agenda_markdown, with_agenda

    fields = Page.__dataclass_fields__
    pages = [Page(**{k: v for k, v in row.items() if k in fields}) for row in manifest["lessons"]]  # type: ignore[attr-defined]
    text = with_agenda(guide.read_text(encoding="utf-8"), agenda_markdown(pages, str(manifest["model"])))
    guide.write_text(text, encoding="utf-8")


AGENDA_RUN = re.compile(r"^\| [\d:]+ \| \[[^\]]+\]\(<?\.\./notebooks/([^)>]+)>?\) \| \d+ \| \d+ \| (\d+) s \|", re.M)


def recount_guide(guide: Path = GUIDE_FILE, root: Path = ROOT) -> list[str]:
    """Rewrite the guide's agenda from the notebooks as they are now, executing nothing; return the lessons listed.

    Words, lines of code and each lesson's stated time are counted again; each lesson keeps the run time the agenda
    last measured (a lesson new to the agenda shows "not run" until ``--update-guide``). For a lesson edit: seconds.
    """
    sys.path.insert(0, str(BOOK / "_ext"))
    from course_site import Page, agenda_markdown, outline, section_of, with_agenda

    text = guide.read_text(encoding="utf-8")
    runs = {name: float(seconds) for name, seconds in AGENDA_RUN.findall(text)}
    model = re.search(r"XAI_MODEL=(\w+)", text)
    pages = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        docname = f"notebooks/{path.stem}"
        if section_of(docname) == "Lessons":
            counted = outline(nbformat.read(path, as_version=4), fallback_title=path.stem)
            seconds = runs.get(path.name)
            page = Page(**asdict(counted), docname=docname, notebook=f"notebooks/{path.name}", section="Lessons")
            pages.append(replace(page, executed=seconds is not None, run_seconds=seconds))
    agenda = agenda_markdown(pages, model[1] if model else "squeezenet1_1")
    guide.write_text(with_agenda(text, agenda), encoding="utf-8")
    return [page.notebook for page in pages]


INVENTORY_START = b"# Sphinx inventory version"


def fetch_inventories(mapping: dict[str, tuple[str, str]], root: Path = ROOT, timeout: float = 60) -> list[str]:
    """Download each project's ``objects.inv`` (its URL base + ``objects.inv``) into its file (relative to ``root``);
    return one line per project that failed, naming the URL and why (the others are written all the same).

    Needs internet: ``make html`` itself never fetches (book/_inventories/README.md says where each file came from).
    A download that is not a Sphinx inventory (an error page) is refused, and the file already there is kept.
    """
    import urllib.request

    failed = []
    for name, (base, inventory) in mapping.items():
        url = base.rstrip("/") + "/objects.inv"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read()
        except OSError as error:  # URLError, HTTPError and timeouts are all OSErrors
            failed.append(f"{name}: {url} could not be downloaded ({getattr(error, 'reason', error)})")
            continue
        if not data.startswith(INVENTORY_START):
            failed.append(f"{name}: {url} is not a Sphinx inventory (it starts {data[:40]!r})")
            continue
        target = root / inventory
        target.parent.mkdir(parents=True, exist_ok=True)
        target.with_suffix(".part").write_bytes(data)
        os.replace(target.with_suffix(".part"), target)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python book/build.py [--out DIR] [--only NAME ...] [--without-solutions] [--rerun]``.

    Also ``[--update-guide]``: write the measured agenda into docs/instructor_guide.md.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the site goes (default: build/html)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="execute only these notebooks (file-name prefix under notebooks/), e.g. --only 00",
    )
    parser.add_argument(
        "--without-solutions",
        action="store_true",
        help="leave out notebooks/solutions/ and the instructor guide (a site for learners)",
    )
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="execute every notebook even when the cache holds its outputs (re-measures the agenda)",
    )
    parser.add_argument(
        "--update-guide", action="store_true", help="also write the measured agenda into docs/instructor_guide.md"
    )
    parser.add_argument(
        "--recount-guide",
        action="store_true",
        help="only recount the guide's agenda (words, lines, stated times) from the notebooks, executing nothing",
    )
    parser.add_argument(
        "--fetch-inventories",
        action="store_true",
        help="only download the libraries' intersphinx inventories into book/_inventories/ (needs internet)",
    )
    parser.add_argument("--source", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="print warnings and errors only")
    args = parser.parse_args(argv)
    if args.fetch_inventories:
        mapping = configuration()["intersphinx_mapping"]
        failed = fetch_inventories(mapping)  # type: ignore[arg-type]
        for line in failed:
            print(f"--fetch-inventories: {line}", file=sys.stderr)
        print(f"{len(mapping) - len(failed)} of {len(mapping)} inventories written into book/_inventories/")  # type: ignore[arg-type]
        return 1 if failed else 0
    if args.recount_guide:
        listed = recount_guide()
        print(f"agenda recounted in {GUIDE_FILE.relative_to(ROOT)} ({len(listed)} lessons; run times kept)")
        return 0
    if args.update_guide and (args.only or args.without_solutions):
        parser.error("--update-guide needs the whole course; leave out --only and --without-solutions.")
    start = time.perf_counter()
    try:
        manifest = build(
            args.out,
            source=args.source,
            only=args.only,
            without_solutions=args.without_solutions,
            rerun=args.rerun,
            quiet=args.quiet,
        )
    except SiteBuildError as error:
        print(f"make html failed; the previous site, if any, is untouched: {error}", file=sys.stderr)
        return 1
    if args.update_guide:
        update_guide(manifest)
        print(f"agenda written into {GUIDE_FILE.relative_to(ROOT)}")
    print(f"site ready in {time.perf_counter() - start:.0f} s: {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
