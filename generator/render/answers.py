"""An answer rendered as the model meant it: Markdown to HTML, sanitized, code highlighted; and its exact raw text.

Model answers are untrusted. The rendered view is made in three steps, each a kept library:

1. markdown-it-py (CommonMark, plus tables and strikethrough) with **raw HTML disabled**, so ``<script>`` in
   an answer is text, and with images disabled (an answer must not make the reader's browser fetch a URL);
   headings are moved down three levels so an answer's ``# Title`` cannot pose as the page's.
2. Code blocks highlighted by Pygments (its output escapes the code); an unknown language is plain text.
3. nh3 (ammonia) cleans the result against an allow-list: only the tags below, only ``href`` (absolute
   http, https or mailto), ``title``, ``colspan``/``rowspan``, ``start``, ``align`` and Pygments' own classes;
   no event handler, style, id, form, iframe, svg or script survives, links get ``rel="noopener noreferrer
   nofollow"``.

Control characters are made visible (escape.visible) before any of this, so Python-Markdown's placeholders
(\\x02...\\x03) cannot appear; backticks, tildes, tabs and whitespace-only lines are written as character
references, which Python-Markdown leaves alone (superfences would read fences even inside the block). The HTML is then a raw block of the page: Python-Markdown stores a raw HTML
block whole and puts it back unchanged, so nothing in it is read as Markdown, a snippet or a template, and
since every ``<`` of the answer's text is an entity, no line of it can close the block. The raw view is the
answer's exact text HTML-escaped in ``<pre><code>``.
"""

from __future__ import annotations

import html
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

from .escape import Markdown, html_text, visible

TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h4", "h5", "h6", "hr", "i", "kbd",
        "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr",
        "ul"}
ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan", "align"}, "th": {"colspan", "rowspan", "align"},
              "ol": {"start"}}
_PYGMENTS_CLASSES = {c for c in STANDARD_TYPES.values() if c}
CLASSES = {"span": _PYGMENTS_CLASSES, "pre": {"highlight"}}  # nh3 keeps only these classes
URL_SCHEMES = {"http", "https", "mailto"}


def _href_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        return value if scheme in URL_SCHEMES else None  # no relative links into the site, no javascript:
    return value


@lru_cache(maxsize=64)
def _lexer(lang: str):
    try:
        return get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        return None


_FORMATTER = HtmlFormatter(nowrap=True)  # building one costs ~0.4 ms (it makes a style sheet): made once


def _highlight(code: str, lang: str, attrs: str) -> str:
    lexer = _lexer(lang.strip().split()[0].lower() if lang.strip() else "")
    if lexer is None:
        return ""  # markdown-it escapes the code itself
    body = highlight(code, lexer, _FORMATTER)
    return f'<pre class="highlight"><code>{body}</code></pre>'  # markdown-it uses a "<pre" result as is


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
    md.enable(["table", "strikethrough"])
    md.disable("image")

    def heading(self, tokens, idx, options, env):
        tag = tokens[idx].tag
        level = min(6, int(tag[1]) + 3)
        tokens[idx].tag = f"h{level}"
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("heading_open", heading)
    md.add_render_rule("heading_close", heading)
    return md


@lru_cache(maxsize=4096)  # the same answer text (an empty one, a refusal) is rendered once per process
def rendered(text: str) -> str:
    """The answer's Markdown as sanitized HTML."""
    raw = _parser().render(visible(text))
    clean = nh3.clean(raw, tags=TAGS, attributes=ATTRIBUTES, allowed_classes=CLASSES, url_schemes=URL_SCHEMES,
                      attribute_filter=_href_filter, link_rel="noopener noreferrer nofollow", strip_comments=True)
    return _keep_whitespace(clean)


def raw(text: str) -> str:
    """The exact text (control characters made visible), HTML-escaped for a ``<pre><code>``."""
    return _keep_whitespace(html.escape(visible(text), quote=False))


def _keep_whitespace(fragment: str) -> str:
    """Backticks, tildes, tabs and the spaces of whitespace-only lines as character references.

    Some of Python-Markdown's steps run on the whole page before it sets a raw HTML block aside:
    pymdownx.superfences finds ``` and ~~~ fences anywhere (even inside our block, which would let an answer
    restructure it), and the whitespace normalizer expands tabs and empties whitespace-only lines. Written as
    references, these characters reach the browser (and the reader) unchanged and are invisible to those steps.
    """
    fragment = fragment.replace("`", "&#96;").replace("~", "&#126;")
    lines = fragment.replace("\t", "&#9;").split("\n")
    return "\n".join(line.replace(" ", "&#32;") if line and not line.strip(" ") else line for line in lines)


# ------------------------------------------------------------------------------------------ the columns


def _e(text) -> str:
    return html_text("—" if text is None else text)


def _measurements(answer) -> str:
    """One line of what was measured while the answer arrived."""
    from .formats import duration

    tps = f"{answer.tokens_per_s:.1f}" if answer.tokens_per_s is not None else None
    if tps and getattr(answer, "tokens_per_s_source", None) == "stream":
        tps += " (measured here)"  # from the stream, network included, where the server reports no rate
    # The names are ours (plain words); only the values are escaped.
    items = [("latency", duration(answer.latency_ms)), ("first token", duration(answer.ttft_ms)),
             ("load (server)", duration(answer.load_ms)), ("prompt tokens", answer.prompt_eval_count),
             ("answer tokens", answer.eval_count), ("tokens/s", tps), ("done_reason", answer.done_reason)]
    text = " · ".join(f"{name} <strong>{_e(value)}</strong>" for name, value in items)
    return f'<p class="bench-measurements">{text}</p>'


def _admonition(kind: str, title: str, text: str) -> str:
    return f'<div class="admonition {kind}"><p class="admonition-title">{_e(title)}</p><p>{_e(text)}</p></div>'


def _column(task_id: str, index: int, c) -> str:
    """One model's answer: its flags and measurements, the rendered view, and a toggle to the raw text."""
    ident = f"{task_id}-{index}"
    parts = [f'<section class="bench-answer" aria-label="{_e(c.model.label)}">',
             f'<p class="bench-answer-title"><strong>{_e(c.model.label)}</strong> · {_e(c.summary)}</p>']
    if c.cell.status == "ok":
        a = c.answer
        parts += [_admonition("warning", f.title, f.text) for f in c.flags]
        parts.append(_measurements(a))
        if a.text:
            parts.append(f'<input type="checkbox" class="bench-raw-toggle" id="raw-{ident}">'
                         f'<label class="bench-raw-label" for="raw-{ident}">Show the exact raw text</label>')
            parts.append(f'<div class="bench-rendered">{rendered(a.text)}</div>')
            parts.append(f'<div class="bench-raw"><pre><code>{raw(a.text)}</code></pre></div>')
        else:
            parts.append("<p><em>(no text)</em></p>")
        if a.thinking:
            parts.append(f'<details class="note"><summary>Thinking (shown, never graded)</summary>'
                         f'<pre><code>{raw(a.thinking)}</code></pre></details>')
        digest = a.digest[:12] if a.digest else None
        parts.append(f'<p class="bench-answer-meta">Answered {_e(a.created_at)} · model digest {_e(digest)} · '
                     f'server {_e(a.server_version)} · output sha256 {_e(a.output_sha256[:12])}</p>')
    elif c.cell.status == "failed":
        parts.append(_admonition("failure", "UNAVAILABLE", c.reason or ""))
        parts.append(f"<p>Failing since {_e(c.cell.failure.at)} ({_e(c.cell.failure.kind)}). It is retried on "
                     f"the next <code>bench run</code>.</p>")
    else:
        parts.append(_admonition("info", "Not run yet", c.reason or ""))
    parts.append("</section>")
    return "\n".join(parts)


def answers_block(task) -> Markdown:
    """Every model's answer to one task: side by side on wide screens, as tabs on phones (CSS only, no script).

    One raw HTML block: our own tags, untrusted text only as ``html_text`` or the sanitized/escaped views.
    """
    task_id = task.spec.id
    tabs, columns = [], []
    for i, c in enumerate(task.cells):
        checked = " checked" if i == 0 else ""
        tabs.append(f'<input type="radio" class="bench-tab-input" name="answers-{task_id}" id="tab-{task_id}-{i}"'
                    f'{checked}><label class="bench-tab-label" for="tab-{task_id}-{i}">{_e(c.model.label)}</label>')
        columns.append(_column(task_id, i, c))
    body = "\n".join(columns)
    return Markdown(f'<div class="bench-answers">\n{"".join(tabs)}\n'
                    f'<div class="bench-columns">\n{body}\n</div>\n</div>')
