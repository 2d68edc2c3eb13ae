"""Each term of the course's glossary links to its entry where a lesson first uses it, as a Sphinx extension.

The glossary is Sphinx's own (``book/glossary.md``, a ``{glossary}`` block: each term a Sphinx ``term``); the
lessons are notebooks that stay plain Markdown for JupyterLab. On each notebook page of the course this links the
first use of each term in the prose (its words, in any case, a plural too; never in code, a heading, a link or a
paper's title) to the term's entry, so that a reader meets the definition where the word first appears.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from course_site import section_of
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform

NOT_PROSE = (nodes.literal, nodes.literal_block, nodes.reference, nodes.title, nodes.raw, nodes.math, nodes.math_block)
"""Where a term is never linked: code, headings, links, raw HTML, formulas."""


def term_words(term: str) -> str:
    """The words a term is written with in the prose: its name without a closing parenthesis.

    >>> term_words("Sanity check (model randomisation)"), term_words("Grad-CAM")
    ('Sanity check', 'Grad-CAM')
    """
    return re.sub(r"\s*\([^)]*\)$", "", term)


def term_pattern(terms: Iterable[str]) -> re.Pattern[str]:
    """One expression for every term's words: longest first, whole words, any case, a plural allowed; the words
    themselves are its first group.

    >>> pattern = term_pattern(["Grad-CAM", "Guided Grad-CAM", "Sanity check (model randomisation)"])
    >>> [(m[0], m[1]) for m in pattern.finditer("Guided Grad-CAM, not Grad-CAMs: two sanity checks, a grad-camera.")]
    [('Guided Grad-CAM', 'Guided Grad-CAM'), ('Grad-CAMs', 'Grad-CAM'), ('sanity checks', 'sanity check')]
    """
    words = sorted({term_words(term) for term in terms}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, words)) + r")(?:e?s)?(?![\w-])", re.IGNORECASE)


def in_a_title(written: str, words: str) -> bool:
    """Whether a term is written as part of a title (a paper's, quoted in the text): every word capitalised where
    the term's own are not.

    >>> in_a_title("Sanity Checks", "Sanity check"), in_a_title("sanity checks", "Sanity check")
    (True, False)
    >>> in_a_title("Guided Grad-CAM", "Guided Grad-CAM"), in_a_title("Faithfulness", "Faithfulness")
    (False, False)
    """
    capitalised = [word[:1].isupper() for word in written.split()]
    return len(capitalised) > 1 and all(capitalised) and not all(word[:1].isupper() for word in words.split())


class LinkFirstUse(SphinxPostTransform):
    """On a notebook page of the course, the first use of each glossary term in the prose links to its entry."""

    default_priority = 20  # after Sphinx resolves the page's own links, so that a linked word is left alone
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        docname = self.env.docname
        entries = {
            term_words(name).lower(): (term_words(name), target)
            for (kind, name), target in self.env.get_domain("std").objects.items()  # type: ignore[attr-defined]
            if kind == "term"
        }
        if section_of(docname) is None or not entries:
            return
        pattern = term_pattern(entries)
        for text in list(self.document.findall(nodes.Text)):
            if not entries or any(isinstance(node, NOT_PROSE) for node in _ancestors(text)):
                continue
            pieces: list[nodes.Node] = []
            start = 0
            for match in pattern.finditer(text):
                words, target = entries.get(match[1].lower(), ("", None))
                if target is None or in_a_title(match[0], words):
                    continue
                del entries[match[1].lower()]  # only the first use of a term is linked
                uri = self.app.builder.get_relative_uri(docname, target[0]) + f"#{target[1]}"
                pieces += [nodes.Text(text[start : match.start()]), _link(match[0], uri)]
                start = match.end()
            if pieces:
                text.parent.replace(text, [*pieces, nodes.Text(text[start:])])


def _link(words: str, uri: str) -> nodes.reference:
    return nodes.reference("", words, internal=True, refuri=uri, classes=["course-glossary-link"])


def _ancestors(node: nodes.Node) -> Iterable[nodes.Node]:
    while node.parent is not None:
        node = node.parent
        yield node


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_post_transform(LinkFirstUse)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
