"""Shared by the site and browser tests: a project in a temp dir built with the real mkdocs.yml, and an HTML reader."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Answers that try every way out of a code block, a content tab or the page.
HOSTILE = {
    "script": "<script>window.__pwned=1; document.title='pwned'</script>",
    "img": '<img src=x onerror="window.__pwned=1">',
    "fence": "Here is code:\n```\n</code></pre><script>window.__pwned=1</script>\n```\nand after ~~~\n~~~\n",
    "snippets": '--8<-- "/etc/passwd"\n--8<-- "mkdocs.yml"\n;--8<-- "/etc/hostname"',
    "jinja": "{{ config.site_name }} {% include 'x' %} {{ 7 * 7 }} {# c #}",
    "placeholder": "\x02wzxhzdk:0\x03 and \x02amp\x03 \x01\x04 \x00\x1b[31m",
    "tabs": '=== "fake tab"\n    inside the fake tab\n\n=== "second fake"\n    more',
    "admonition": "!!! danger \"Boom\"\n    admonition body\n??? note\n    details body",
    "div": "</div>\n</div></div></div>\n<div markdown>*x*</div>",
    "link": "[x](javascript:window.__pwned=1) ![i](javascript:1) <javascript:alert(1)>",
    "iframe": '<iframe src="javascript:window.__pwned=1"></iframe>\n<svg onload="window.__pwned=1"/>',
    "attr": '# Heading {: onclick="window.__pwned=1" }\ntext {: onmouseover="window.__pwned=1" }',
    "whitespace": "\n\n  leading blank lines\n\tTAB\tinside\r\nCRLF line\n   \ntrailing spaces   \n"
                  "\u2028line separator\u2029paragraph separator\x85next line\ufeffbom\u00a0nbsp\n\n",
    "html-entities": "&lt;script&gt; &amp;lt; &#60;b&#62; &unknown;",
    "long-fence": "`" * 12 + "\nnot closed\n" + "~" * 20,
}


def hostile_answer(prompt: str) -> str:
    """The answer to 'Case NAME' is HOSTILE[NAME]; the last task gets all of them at once."""
    name = prompt.removeprefix("Case ").strip()
    return HOSTILE.get(name, "\n".join(HOSTILE.values()))


def project(tmp: Path) -> Path:
    """tmp as a project: the real mkdocs.yml (hook by absolute path) and site_src; returns mkdocs.yml."""
    data = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    data["hooks"] = [str(ROOT / "generator" / "mkdocs_hook.py")]
    shutil.copytree(ROOT / "site_src", tmp / "site_src", dirs_exist_ok=True)
    path = tmp / "mkdocs.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, env=env, cwd=config.parent, timeout=120)


def expected_code(text: str) -> str:
    """What a code block shows for ``text``: control pictures, and one final newline added when missing."""
    from generator.render import visible

    shown = visible(text)
    return shown if shown.endswith("\n") else shown + "\n"


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of every <code> element."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.codes: list[str] = []
        self.texts: dict[str, list[str]] = {}
        self._open: list[list[str]] = []
        self._stack: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "code":
            self._open.append([])
        self._stack.append(tag)

    def handle_endtag(self, tag):
        if tag == "code" and self._open:
            self.codes.append("".join(self._open.pop()))
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def handle_data(self, data):
        for buf in self._open:
            buf.append(data)
        if self._stack:
            self.texts.setdefault(self._stack[-1], []).append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]
