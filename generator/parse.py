"""Parse one answer, once, into what checks read: prose, code blocks and thinking (never graded).

The parser is CommonMark (markdown-it-py), so a fence indented inside a list item, a ``~~~`` fence, an
indented code block and an unclosed fence at the end of a cut answer are all found the way a renderer finds
them. Line endings are normalised to ``\\n`` first.

Thinking: a leading ``<think>…</think>`` or ``<thinking>…</thinking>`` (also after blank lines), and the
``Thinking...`` … ``...done thinking.`` preamble of the Ollama CLI, are split off. An opening tag that is
never closed makes the whole rest thinking (the model was cut off while thinking: there is no answer).

Languages: the first word of a fence's info string, lower-cased and mapped through ``ALIASES`` (py, py3,
python3 → python; sh, bash, zsh, shell, console → shell; cron → crontab). An untagged block (or a
``text``/``plaintext`` one) is classified by content: a crontab line → crontab; a shell #! or shell syntax →
shell; code that parses as Python and is more than a bare word or expression → python; otherwise "".
An answer with no code block at all that parses as Python as a whole is one python block (code, unfenced).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt

ALIASES = {
    "python": "python", "py": "python", "python3": "python", "py3": "python", "pycon": "python",
    "ipython": "python", "python-repl": "python",
    "bash": "shell", "sh": "shell", "shell": "shell", "zsh": "shell", "ksh": "shell", "dash": "shell",
    "console": "shell", "shell-session": "shell", "shellsession": "shell", "terminal": "shell",
    "crontab": "crontab", "cron": "crontab",
}
UNTAGGED = {"", "text", "txt", "plaintext", "plain", "none", "code"}
_THINK_TAG = re.compile(r"^\s*<(think|thinking|reasoning)>(.*?)(?:</\1>|\Z)", re.DOTALL | re.IGNORECASE)
_THINKING_CLI = re.compile(r"^\s*Thinking\.\.\.\n(.*?)(?:\n\.\.\.done thinking\.|\Z)", re.DOTALL)
_MARKER = re.compile(r"^\s*(>\s*)*((\d{1,3}[.)]|[-*+])\s+)?")
_SHEBANG = re.compile(r"^#!\s*\S*/(env\s+)?(ba|z|k|da)?sh\b")
_CRON_LINE = re.compile(r"^\s*(@(reboot|yearly|annually|monthly|weekly|daily|hourly)|([0-9*/,\-A-Za-z?]+\s+){4}[0-9*/,\-A-Za-z?]+)\s+\S")
_SHELL_HINTS = re.compile(
    r"^\s*(set -[euxo]|if \[|\[\[|for \w+ in .*; do|while .*; do|fi$|done\b|esac$|echo |printf |export \w+=|"
    r"local \w+|readonly |exec \d*[<>]|flock |trap |source |\. /|cd |mkdir |chmod |crontab |sudo |"
    r"\w+=\$?[\(\"'\w])",
    re.MULTILINE,
)


@dataclass(frozen=True)
class CodeBlock:
    """One code block of an answer."""

    language: str  # normalised: python, shell, crontab, another tag as written, or "" when unknown
    tag: str  # the first word of the info string as written ("" when untagged)
    code: str
    line: int  # line of the opening fence (or first line of an indented block), from 1
    fenced: bool
    lead: str = ""  # the prose just before the block, up to 3 paragraphs ("don't do this:", "## ✅ Fixed")


@dataclass(frozen=True)
class ParsedAnswer:
    """An answer as every check reads it."""

    text: str  # the answer with CRLF normalised and thinking removed
    thinking: str  # the split-off thinking, shown on the page, never graded
    prose: str  # every line outside code blocks (headings included), joined by newlines
    prose_words: int  # words in the prose, headings and thinking excluded
    blocks: tuple[CodeBlock, ...]
    inline_code: tuple[str, ...]  # `code spans` in the prose

    def code(self, language: str) -> list[CodeBlock]:
        return [b for b in self.blocks if b.language == language]

    @property
    def code_text(self) -> str:
        return "\n".join(b.code for b in self.blocks)

    def scope(self, where: str) -> str:
        """The text a lexical check searches: ``code``, ``prose`` or ``all`` (thinking is never included)."""
        if where == "code":
            return self.code_text
        if where == "prose":
            return self.prose
        return self.text


def parse_answer(text: str) -> ParsedAnswer:
    """Parse an answer (cached: the checks of one answer share one parse)."""
    return _parse(text)


@lru_cache(maxsize=256)
def _parse(raw: str) -> ParsedAnswer:
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text, thinking = split_thinking(text)
    tokens = _markdown().parse(text)
    lines = text.split("\n")
    code_lines: set[int] = set()
    heading_lines: set[int] = set()
    blocks: list[CodeBlock] = []
    inline: list[str] = []
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map:
            start, end = token.map
            code_lines.update(range(start, end))
            fenced = token.type == "fence"
            tag = _tag(token.info) if fenced else ""
            code = token.content if not token.content or token.content.endswith("\n") else token.content + "\n"
            blocks.append(CodeBlock(language=classify(tag, code), tag=tag, code=code,
                                    line=start + 1, fenced=fenced, lead=_lead(lines, code_lines, start)))
        elif token.type == "heading_open" and token.map:
            heading_lines.update(range(*token.map))
        elif token.type == "inline":
            inline += [child.content for child in token.children or [] if child.type == "code_inline"]
    if not blocks and text.strip() and is_python(text):
        # An answer that is nothing but code, unfenced (small models do this): one untagged python block.
        blocks.append(CodeBlock(language="python", tag="", code=text.strip("\n") + "\n", line=1, fenced=False))
        code_lines.update(range(len(lines)))
    prose_lines = [line for i, line in enumerate(lines) if i not in code_lines]
    counted = [line for i, line in enumerate(lines) if i not in code_lines and i not in heading_lines]
    # List markers ("1.", "-") and quote marks are layout, not words.
    counted = [_MARKER.sub("", line) for line in counted]
    words = sum(1 for line in counted for token in line.split() if any(c.isalnum() for c in token))
    return ParsedAnswer(text=text, thinking=thinking, prose="\n".join(prose_lines), prose_words=words,
                        blocks=tuple(blocks), inline_code=tuple(inline))


def _lead(lines: list[str], code_lines: set[int], start: int, keep: int = 3) -> str:
    """The prose just before line ``start`` (0-based), back to the previous code block: its last ``keep``
    paragraphs (a heading is one), separated by blank lines, nearest last."""
    i = start - 1
    paragraphs: list[list[str]] = [[]]
    while i >= 0 and i not in code_lines and len(paragraphs) <= keep:
        if lines[i].strip():
            paragraphs[-1].append(lines[i].strip())
        elif paragraphs[-1]:
            paragraphs.append([])
        i -= 1
    found = [" ".join(reversed(p)) for p in paragraphs if p][:keep]
    return "\n\n".join(reversed(found))


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark")


def split_thinking(text: str) -> tuple[str, str]:
    """(answer, thinking) of a text that may start with a thinking section."""
    for pattern in (_THINK_TAG, _THINKING_CLI):
        found = pattern.match(text)
        if found:
            return text[found.end():].lstrip("\n"), found.group(found.lastindex).strip()
    return text, ""


def _tag(info: str) -> str:
    word = info.strip().lstrip("{.").split(maxsplit=1)
    return re.split(r"[}{,;:]", word[0])[0].lower() if word else ""


def classify(tag: str, code: str) -> str:
    """The normalised language of a block with info tag ``tag``."""
    if tag in ALIASES:
        return ALIASES[tag]
    if tag not in UNTAGGED:
        return tag
    stripped = code.strip()
    if not stripped:
        return ""
    if _SHEBANG.match(stripped):
        return "shell"
    meaningful = [line for line in stripped.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if meaningful and all(_CRON_LINE.match(line) for line in meaningful):
        return "crontab"
    if is_python(code):
        return "python"
    if _SHELL_HINTS.search(code) or stripped.startswith("$ "):
        return "shell"
    return ""


def is_python(code: str) -> bool:
    """Code that parses as Python and says more than a bare name or expression (``crontab -e`` parses too)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    bare = (ast.Name, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Attribute, ast.Compare, ast.Tuple)
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, bare)) for node in tree.body)
