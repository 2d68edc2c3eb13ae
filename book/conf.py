"""Sphinx configuration of the course's site: ``make html`` (``python book/build.py``) builds it into build/html/.

Jupyter Book's engine: Sphinx, MyST-NB (executes the notebooks and renders them) and sphinx-book-theme (sidebar,
search, previous/next, download buttons). What is particular to this course is in ``_ext/``: ``course_site.py``
(model banner, agenda, MathJax, solutions), ``course_index.py`` (the home page's list), ``api_reference.py`` (the
API reference of utils) and ``glossary_links.py`` (a term's first use links to the glossary). The pages' source is
the repository itself (this folder is the configuration): ``book/index.md``, every notebook under ``notebooks/``
where it lives, and ``docs/instructor_guide.md``, so that notebooks run in their own folder and links between files
work alike in the repository and on the site. By hand: ``sphinx-build -c book . build/html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

_index = (HERE / "index.md").read_text(encoding="utf-8")
project = next(line[2:].strip() for line in _index.splitlines() if line.startswith("# "))
author = "The course's maintainers, after Conor O'Sullivan's article in A Data Odyssey"
copyright = (
    "the course's maintainers. Code: MIT. Photos (data/README.md): cat and coffee CC0 (scikit-image); "
    "squirrel and fruits Apache-2.0 and BSD-3-Clause (OpenCV's sample data)"
)

extensions = [
    "myst_nb",
    "sphinx_copybutton",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "course_site",
    "course_index",
    "api_reference",
    "glossary_links",
]
# Copy buttons copy the code only, never the prompt or the output (MyST-NB shows neither inside the code).
copybutton_exclude = ".linenos, .gp, .go"
root_doc = "book/index"
smartquotes = False  # titles and prose appear exactly as the notebooks write them
include_patterns = [
    "book/*.md",  # the index, the references and the glossary
    "book/api/*.md",  # the API reference of utils: one page per module
    "docs/instructor_guide.md",
    "notebooks/*.ipynb",
    "notebooks/solutions/*.ipynb",
]
exclude_patterns = [".git", ".venv", "build", "**/.ipynb_checkpoints"]
suppress_warnings: list[str] = [
    # MyST-NB guesses the lexer "ipython3" from the kernel; Sphinx knows it under that name too.
    "mystnb.unknown_mime_type",
]

# --- MyST and MyST-NB: the notebooks are executed during the build ---------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "cache"  # see the README: executed once per change of a notebook, utils/, data/ or a pin
nb_execution_timeout = 600  # a cell running longer fails the build, as in the test suite
nb_execution_allow_errors = False  # cells tagged raises-exception may raise (nbclient honours the tag)
nb_execution_raise_on_error = True  # any other error stops the build; book/build.py names the notebook and cell
nb_execution_show_tb = False
nb_execution_in_temp = False  # each notebook runs in its own folder, as in JupyterLab and nbval
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget scripts from a CDN: the explorer's live widget needs a kernel (make lab)

# --- the API reference (book/api/): autodoc reads each module's docstrings as they are (reST, doctest examples) -------
autosummary_generate = False  # each page's table links to the entries on the same page: no stub pages
autodoc_member_order = "bysource"  # a module's __all__ order, as its author listed it
autodoc_typehints = "signature"
autodoc_typehints_format = "short"  # Tensor, not torch.Tensor
# Signatures keep the annotations as the code writes them (attr: MapLike -> npt.NDArray[np.float32]), not NumPy's
# expansion of NDArray (ndarray[tuple[Any, ...], dtype[float32]]): with an alias named, autodoc leaves them unevaluated.
autodoc_type_aliases = {"npt.NDArray": "numpy.typing.NDArray"}
autodoc_preserve_defaults = True  # the default as written (DEFAULT_LAYER), not its value's repr
add_module_names = False  # grad_cam(...), under the page titled utils.saliency

# --- the pages ----------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
templates_path = ["_templates"]
html_additional_pages = {"index": "course-redirect.html"}  # build/html/index.html leads to the course's index
html_css_files = ["course.css"]
html_js_files = ["course.js"]  # the sidebar buttons on a phone (see the file)
html_search_scorer = str(HERE / "search_scorer.js")  # a function found by its name before a module named after it
html_copy_source = True  # the download button offers each notebook from _sources/
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "use_download_button": True,
    "use_fullscreen_button": True,
    "home_page_in_toc": False,  # the course's title above the sidebar leads to the index
    "show_toc_level": 2,
    "navigation_with_keys": True,
    "announcement": "",  # course_site writes the model banner here
}
# The theme's sidebar without its search field: one search button on every page, in the article's header (Ctrl+K too).
html_sidebars = {"**": ["navbar-logo.html", "icon-links.html", "sbt-sidebar-nav.html"]}

# --- links to the libraries' own documentation (intersphinx), offline -----------------------------------------------
# Each inventory is a file shipped in book/_inventories/ (its README says where each came from), read relative to the
# site's source, the repository: the build never fetches one. A missing file is said once and its project left out
# (api_reference.py); `python book/build.py --fetch-inventories` downloads all seven where there is internet.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", "book/_inventories/python.inv"),
    "numpy": ("https://numpy.org/doc/stable/", "book/_inventories/numpy.inv"),
    "matplotlib": ("https://matplotlib.org/stable/", "book/_inventories/matplotlib.inv"),
    "PIL": ("https://pillow.readthedocs.io/en/stable/", "book/_inventories/pillow.inv"),
    "torch": ("https://docs.pytorch.org/docs/stable/", "book/_inventories/torch.inv"),
    "torchvision": ("https://docs.pytorch.org/vision/stable/", "book/_inventories/torchvision.inv"),
    "captum": ("https://captum.ai/api/", "book/_inventories/captum.inv"),
}
