"""Escaping untrusted text for the pages, the navigation and the charts: this module's guarantees stand alone.

Untrusted means anything a model, a reviewer, a check or a file wrote: answers, thinking, judge rationales,
failure reasons, check names and details, review labels and issues, and, to keep one rule, every string from
benchmark.yaml (titles, labels, prompts). The page templates are ours; untrusted text only ever reaches them
as Jinja *variables*, never as template source, so ``{{ ... }}`` or ``{% include %}`` in an answer is printed,
not evaluated. Every ``{{ }}`` output goes through one finalizer (``finalize``): a string is escaped with
``inline()`` unless it is a ``Markdown`` value, which only the functions below and the render package's own
builders produce. So forgetting a filter escapes too much, never too little.

Guarantees
----------
- ``fenced(text, indent)`` (raw answers, thinking, rationales, prompts, test code): a fenced code block whose
  backtick fence is longer than the longest run of backticks or tildes in the text, every line indented to
  the block's depth (so a line cannot end the block, nor the content tab, admonition or details around it).
  pymdownx.superfences stashes the block before any other Markdown processing and HTML-escapes it, so nothing
  inside is Markdown, HTML, a tab, an admonition or a snippet. The page shows the text exactly, tabs included
  (superfences ``preserve_tabs``), except that C0 control characters other than tab and newline, and DEL, are
  shown as their Unicode control pictures (U+2400 + code, U+2421): Python-Markdown uses \\x02...\\x03 (and
  superfences \\x01...\\x04) as placeholders inside the page it builds, and drops or rewrites \\r. Lone
  surrogates become U+FFFD. Pygments adds one final newline when the text has none.
- ``inline(text)`` (table cells, list items, admonition bodies, tab titles, headings): control pictures as
  above, every run of whitespace (newlines included) folded to one space, Markdown's backslash-escapable
  characters and ``|`` backslash-escaped, and ``& < > " '`` written as HTML entities. The result is plain
  text on one line: no link, image, emphasis, HTML tag, attribute list or table cell break.
- ``html_text(text)`` (nav titles, site_name, the page ``<title>``, HTML blocks this package writes):
  control pictures, then ``& < > " '`` as entities. MkDocs themes insert nav titles and site_name into the
  page unescaped, and Material passes the page title through ``striptags``, which *unescapes* entities; so a
  title for the nav is also stripped of ``<`` and ``>`` (``nav_title``), so that no unescaping can make a tag.
- ``svg_text(text)`` (chart labels): control pictures and U+FFFD for surrogates, so the SVG stays valid XML
  (XML 1.0 forbids C0 controls, NUL included); matplotlib escapes ``& < >`` itself.
- ``pymdownx.snippets``, ``md_in_html`` and ``attr_list`` are not enabled in mkdocs.yml (snippets expands
  ``--8<--`` even inside code blocks; attr_list would let ``{: onclick=...}`` set attributes).
- A rendered answer (``generator.render.answers``) is Markdown turned into HTML by markdown-it-py with raw
  HTML disabled, then cleaned by nh3 (an allow-list sanitizer): no script, no event handler, no
  ``javascript:`` URL survives. Its HTML is handed to MkDocs as an opaque block (see that module).
- MkDocs' search index stores each section as the page's (escaped) HTML, so search results show answers as
  text too.
results.json keeps every text byte for byte (JSON-escaped).
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any


class Markdown(str):
    """Markdown this package wrote or made safe; the template finalizer passes it unchanged."""


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Python-Markdown's backslash-escapable characters (markdown.core ESCAPED_CHARS) and '|' (tables).
# '>' is left out: it is written as an entity like the other HTML characters.
_MD_SPECIAL = frozenset("\\`*_{}[]()#+-.!|")
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_FENCE_RUN = re.compile(r"`+|~+")
_INLINE = str.maketrans({**{ch: "\\" + ch for ch in _MD_SPECIAL}, **_HTML_SPECIAL})


def visible(text: str) -> str:
    """Control characters (but tab and newline) as Unicode control pictures; lone surrogates as U+FFFD."""
    text = _CONTROL.sub(lambda m: chr(0x2421 if m.group() == "\x7f" else 0x2400 + ord(m.group())), text)
    return _SURROGATE.sub("\ufffd", text)


def inline(text: Any) -> Markdown:
    """Untrusted text as one line of plain text inside Markdown (a table cell, a list item, a title)."""
    return Markdown(" ".join(visible(str(text)).split()).translate(_INLINE))


def fenced(text: str, indent: int = 0, lang: str = "text") -> Markdown:
    """Untrusted text shown exactly, as a fenced code block at ``indent`` spaces (a tab's or admonition's depth)."""
    text = visible(text)
    longest = max((len(run) for run in _FENCE_RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    pad = " " * indent
    lines = [f"{fence} {lang}", *text.split("\n"), fence]
    return Markdown("\n".join(pad + line if line else line for line in lines))


def quoted(text: Any) -> Markdown:
    """A title for an admonition, details block or content tab: ``"..."`` with the text made inline-safe."""
    return Markdown(f'"{inline(text)}"')


def link(text: Any, target: str) -> Markdown:
    """A link with untrusted text; ``target`` is built from slugs, never from untrusted text."""
    return Markdown(f"[{inline(text)}]({target})")


def html_text(text: Any) -> str:
    """Untrusted text as HTML text content or a quoted attribute value (whitespace folded to single spaces)."""
    return _html_text(str(text))


@lru_cache(maxsize=8192)  # labels, statuses and numbers repeat on every page
def _html_text(text: str) -> str:
    return html.escape(" ".join(visible(text).split()), quote=True)


def nav_title(text: Any) -> str:
    """A nav title or site_name: HTML-escaped, and without ``<``/``>`` so that a theme's striptags cannot revive a tag."""
    return html_text(str(text).replace("<", "‹").replace(">", "›"))


def svg_text(text: Any) -> str:
    """A chart label: valid in XML (no control characters, no surrogates)."""
    return visible(str(text))


def finalize(value: Any) -> Any:
    """The Jinja finalizer: every ``{{ }}`` output is escaped unless it is Markdown made here."""
    if isinstance(value, Markdown):
        return value
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    return inline(value)


__all__ = ["Markdown", "fenced", "finalize", "html_text", "inline", "link", "nav_title", "quoted", "svg_text",
           "visible"]
