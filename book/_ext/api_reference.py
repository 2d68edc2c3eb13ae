"""The API reference of ``utils`` on the course's site (``book/api/``, one page per module), as a Sphinx extension.

autodoc writes each entry from the code, autosummary the table at the top of each page, intersphinx the links to
the libraries' own documentation. What this adds:

* each page opens with the module's one-line job and then a table of its ``__all__``, each name linking to its entry
  on the same page (no stub pages); a constant without a docstring, which Sphinx 9's ``automodule`` leaves out, gets
  an entry too; a docstring's ``|x|`` stays text;
* a name of the API written as code in a page's text (`` `grad_cam` ``), or imported from ``utils`` in a code cell,
  links to its entry, and each entry lists the lessons that use it; a library's dotted name written as code
  (`` `torch.autograd.grad` ``, `` `plt.imshow` ``) links to its documentation;
* intersphinx reads only the inventories shipped in ``book/_inventories/``: one that is missing is said once, with
  how to get it, and the build goes on without it (never a download at build time).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from course_site import ROOT, course_pages, section_of
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.ext.intersphinx import InventoryAdapter
from sphinx.transforms.post_transforms import SphinxPostTransform

PAGES = "book/api/"
"""Where the API reference's pages live (one per module, named after it: ``book/api/utils.saliency``)."""
FETCH = "python book/build.py --fetch-inventories"
"""The command that downloads the inventories, where there is internet."""


# --- intersphinx, offline ----------------------------------------------------------------------------------------


def missing_inventories(mapping: Mapping[str, tuple[str, Any]], srcdir: Path) -> dict[str, str]:
    """The projects of ``intersphinx_mapping`` whose inventory is a file (relative to ``srcdir``) that is not there.

    >>> missing_inventories({"a": ("https://a/", "book/_inventories/a.inv"), "b": ("https://b/", None)}, Path("/"))
    {'a': 'book/_inventories/a.inv'}
    """
    return {
        name: inventory
        for name, (_, inventory) in mapping.items()
        if isinstance(inventory, str) and "://" not in inventory and not (srcdir / inventory).is_file()
    }


def drop_missing_inventories(app: Sphinx, config: Config) -> None:
    """A missing inventory is said once, with how to get it, and left out: its project's names stay plain text."""
    for name, inventory in missing_inventories(config.intersphinx_mapping, Path(app.srcdir)).items():
        del config.intersphinx_mapping[name]
        # Not Sphinx's warning, which fails the build (book/build.py treats every warning as an error).
        print(
            f"warning: {inventory} is missing, so names from {name} link nowhere (the build goes on); "
            f"{FETCH} downloads it where there is internet.",
            file=sys.stderr,
        )


# --- the pages' docstrings ---------------------------------------------------------------------------------------

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


def with_summary(lines: list[str], names: Sequence[str]) -> list[str]:
    """A module's docstring with an autosummary table of ``names`` after its first paragraph, its one-line job (the
    names are the module's own: autodoc has made it the current module).

    >>> print("\\n".join(with_summary(["The job.", "", "More."], ["f", "C"])))
    The job.
    <BLANKLINE>
    .. autosummary::
       :nosignatures:
    <BLANKLINE>
       f
       C
    <BLANKLINE>
    More.
    """
    end = lines.index("") if "" in lines else len(lines)
    table = ["", ".. autosummary::", "   :nosignatures:", "", *(f"   {name}" for name in names), ""]
    return [*lines[:end], *table, *lines[end + 1 :]]


def site_docstring(app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]) -> None:
    """autodoc's hook (in place, as autodoc expects): ``|x|`` as text, a page's module gets its summary table, and a
    value without a docstring of its own (``MODEL_NAMES``) gets none rather than its type's ("Built-in immutable
    sequence...")."""
    if what == "data" and lines and "\n".join(lines).strip() == (inspect.getdoc(type(obj)) or "").strip():
        lines[:] = []
    lines[:] = escape_bars(lines)
    if what == "module" and app.env.docname == PAGES + name:
        lines[:] = with_summary(lines, getattr(obj, "__all__", ()))


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
    found = _AUTOMODULE.search(source[0]) if docname.startswith(PAGES) else None
    names = undocumented_data(found[1]) if found else []
    if names:
        entries = "\n\n".join(f".. autodata:: {found[1]}.{name}" for name in names)  # type: ignore[index]
        source[0] += f"\n```{{eval-rst}}\n{entries}\n```\n"


def _uses(env: BuildEnvironment) -> dict[str, set[str]]:
    if not hasattr(env, "course_uses"):
        env.course_uses = {}  # type: ignore[attr-defined]
    return env.course_uses  # type: ignore[attr-defined]


ALIASES = {
    "np.": "numpy.",
    "npt.": "numpy.typing.",
    "plt.": "matplotlib.pyplot.",
    "nn.": "torch.nn.",
    "F.": "torch.nn.functional.",
}
"""How the lessons abbreviate the libraries they import (``import numpy as np``): a name written so links too."""


def library_url(text: str, urls: Mapping[str, str]) -> str | None:
    """The documentation of a library's dotted name written as code (``nn.ReLU``, ``np.percentile()``), from
    ``urls`` (the intersphinx inventories' Python names); None for anything else, a plain word (``input``) included.

    >>> urls = {"torch.nn.ReLU": "https://docs/relu", "input": "https://docs/input"}
    >>> library_url("nn.ReLU()", urls), library_url("input", urls), library_url("torch.nn.Tanh", urls)
    ('https://docs/relu', None, None)
    """
    name = text.strip().removesuffix("()")
    short = next((alias for alias in ALIASES if name.startswith(alias)), "")
    name = ALIASES[short] + name[len(short) :] if short else name
    return urls.get(name) if "." in name else None


def library_urls(app: Sphinx) -> dict[str, str]:
    """Every Python name of the intersphinx inventories read (``book/_inventories/``) and its documentation's URL."""
    if not hasattr(app, "course_library_urls"):
        inventory = InventoryAdapter(app.env).main_inventory
        urls = {
            name: item.uri for kind, items in inventory.items() if kind[:3] == "py:" for name, item in items.items()
        }
        app.course_library_urls = urls  # type: ignore[attr-defined]
    return app.course_library_urls  # type: ignore[attr-defined]


class LinkApiNames(SphinxPostTransform):
    """A name of the API reference written as code in a page's text (`` `grad_cam` ``, `` `utils.road` ``) links to
    its entry, and a library's (`` `torch.autograd.grad` ``, `` `np.percentile` ``) to its documentation; on the API
    pages, each entry lists the lessons that name it or import it."""

    default_priority = 5
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        env, docname = self.env, self.env.docname
        targets, urls = api_targets(env), library_urls(self.app)
        for literal in list(self.document.findall(nodes.literal)):
            if isinstance(literal.parent, (nodes.reference, addnodes.pending_xref)) or any(
                isinstance(a, (addnodes.desc_signature, nodes.title)) for a in _ancestors(literal)
            ):
                continue
            target, url = targets.get(literal.astext().strip().removesuffix("()")), library_url(literal.astext(), urls)
            if target is not None and target != (docname, ""):
                uri = self.app.builder.get_relative_uri(docname, target[0]) + (f"#{target[1]}" if target[1] else "")
                link = nodes.reference("", "", internal=True, refuri=uri, classes=["course-api-link"])
            elif target is None and url is not None:
                link = nodes.reference("", "", internal=False, refuri=url, classes=["course-library-link"])
            else:
                continue
            literal.replace_self(link)
            link += literal
        if docname.startswith(PAGES):
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


def purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _uses(env).pop(docname, None)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", drop_missing_inventories, priority=100)  # before intersphinx reads the mapping
    app.connect("source-read", add_undocumented_data)
    app.connect("autodoc-process-docstring", site_docstring)
    app.connect("doctree-read", note_uses)
    app.connect("env-purge-doc", purge)
    app.add_post_transform(LinkApiNames)
    app.connect("html-page-context", link_code_cells)
    return {"version": "1.0", "parallel_read_safe": False, "parallel_write_safe": True}
