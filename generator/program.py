"""Build the program a code check runs from a parsed answer: a Python module, a shell script, crontab lines.

Python (after EvalPlus's sanitizer: by syntax tree, never by picking one fence):

1. Every python block that parses contributes, after taking out shell lines (``%pip install``, ``$ ...``)
   and REPL prompts (``>>>``) when only that makes it parse; a block that still does not parse (e.g. one
   cut off mid-way) is skipped whole.
2. From each block its top-level imports (``from __future__`` first, each distinct import once) and its
   top-level definitions: functions, classes, and assignments to names. With an entry point, an import is
   kept only when a kept definition uses a name it binds (annotations and string annotations count), so
   a usage example importing flask or pytest cannot break the program. Everything else at top level
   (calls, prints, ``if __name__ == "__main__":``, loops) is an example, not the solution, and is dropped.
3. A definition whose syntax tree (docstrings removed) equals a definition of the same name in the
   prompt's own code blocks is the prompt quoted back, not the answer's code.
4. Two definitions of one name: the one that differs from the prompt's wins over a quoted one; among
   equals, the last one written wins (the answer's final word, as in a file read top to bottom).
5. With an entry point (the function the task names), only the definitions it reaches by name,
   transitively, are kept, so a test-suite, a demo or a stray ``main()`` block cannot break the import.
   Without one, all kept definitions are.

Imports come first, then the definitions in the order they were written.

Shell: the script is the largest shell block that is not only a crontab line or one-off commands
(``chmod +x …``, ``crontab -e``); a script written out by ``cat > file <<'EOF'`` inside a block is taken from
the here-document.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from .parse import ParsedAnswer, is_python

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class Program:
    """The code a check runs and how it was put together (one line for the page)."""

    code: str
    note: str


@dataclass
class _Definition:
    name: str
    node: ast.stmt
    order: tuple[int, int]
    quoted: bool
    source: str


def _source(code_lines: list[str], node: ast.stmt) -> str:
    """The statement's own text (decorators included), so messages quote the answer's lines as written."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return "\n".join(code_lines[first - 1:node.end_lineno])


def python_program(answer: ParsedAnswer, prompt: ParsedAnswer | None = None, entry: str | None = None) -> Program | None:
    """The answer's Python module, or None when no python block parses."""
    quoted_dumps = _prompt_definitions(prompt)
    imports: list[ast.stmt] = []
    seen_imports: set[str] = set()
    definitions: dict[str, list[_Definition]] = {}
    used = skipped = 0
    for index, block in enumerate(answer.blocks):
        if block.language != "python":
            continue
        code = _salvaged(block.code)
        tree = _parse(code) if code is not None else None
        if tree is None:
            skipped += 1
            continue
        used += 1
        code_lines = code.splitlines()
        for position, node in enumerate(tree.body):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                dump = ast.dump(node)
                if dump not in seen_imports:
                    seen_imports.add(dump)
                    imports.append(node)
                continue
            for name in _defined_names(node):
                quoted = quoted_dumps.get(name) == _normalised(node)
                definitions.setdefault(name, []).append(
                    _Definition(name, node, (index, position), quoted, _source(code_lines, node)))
    if not used:
        return None
    chosen: dict[str, _Definition] = {}
    for name, candidates in definitions.items():
        own = [d for d in candidates if not d.quoted]
        chosen[name] = (own or candidates)[-1]
    keep = _reachable(chosen, entry) if entry and entry in chosen else set(chosen)
    nodes: dict[int, tuple[tuple[int, int], str]] = {}
    for name in keep:
        d = chosen[name]
        nodes[id(d.node)] = (d.order, d.source)
    body = [text for _, text in sorted(nodes.values(), key=lambda item: item[0])]
    future = [n for n in imports if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    rest = [n for n in imports if n not in future]
    if entry and entry in chosen:
        used = {name for n in keep for name in _referenced(chosen[n].node)}
        rest = [n for n in rest if _binds_used_name(n, used)]
    code = "\n".join(ast.unparse(n) for n in [*future, *rest]) + "".join(f"\n\n\n{text}" for text in body)
    code = code.lstrip("\n") + "\n"
    quoted = sorted(name for name, d in chosen.items() if d.quoted and name in keep)
    note = f"program built from {used} python block(s)"
    if skipped:
        note += f", {skipped} that do not parse skipped"
    if any(d.quoted for ds in definitions.values() for d in ds) and not quoted:
        note += "; the prompt's own code quoted back is left out"
    elif quoted:
        note += f"; {', '.join(quoted)} is only the prompt's code quoted back"
    return Program(code=code, note=note)


def defines(answer: ParsedAnswer, name: str) -> bool:
    """Whether any python block defines ``name`` at top level."""
    for block in answer.code("python"):
        tree = _parse(block.code)
        if tree and any(name in _defined_names(node) for node in tree.body):
            return True
    return False


_NOT_PYTHON = re.compile(r"^\s*([%!]|\$ |pip3? install |python3? -m )")


def _salvaged(code: str) -> str | None:
    """The block's code, or the code left once shell lines (``%pip``, ``!pip``, ``$ ...``) and REPL prompts
    (``>>>``, ``...``) are taken out, when only that parses; None when neither does."""
    if _parse(code) is not None:
        return code
    lines = []
    for line in code.splitlines():
        if _NOT_PYTHON.match(line):
            continue
        stripped = line.lstrip()
        if stripped.startswith((">>> ", "... ")) or stripped in (">>>", "..."):
            line = stripped[4:]
        lines.append(line)
    salvaged = "\n".join(lines) + "\n"
    return salvaged if _parse(salvaged) is not None else None


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, _DEFINITIONS):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return [node.target.id]
    return []


def _normalised(node: ast.stmt) -> str:
    """The syntax tree of a definition without docstrings, for comparing with the prompt's."""
    copy = ast.parse(ast.unparse(node)).body[0]
    for sub in ast.walk(copy):
        if isinstance(sub, (*_DEFINITIONS, ast.Module)) and sub.body and isinstance(sub.body[0], ast.Expr) \
                and isinstance(sub.body[0].value, ast.Constant) and isinstance(sub.body[0].value.value, str):
            sub.body = sub.body[1:] or [ast.Pass()]
    return ast.dump(copy)


def _prompt_definitions(prompt: ParsedAnswer | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for block in prompt.code("python") if prompt else []:
        tree = _parse(block.code)
        for node in tree.body if tree else []:
            for name in _defined_names(node):
                found[name] = _normalised(node)
    return found


def _referenced(node: ast.stmt) -> set[str]:
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    for n in ast.walk(node):  # string annotations ("typing.Any") name modules too
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) < 200:
            names.update(re.findall(r"[A-Za-z_]\w*", n.value))
    return names


def _binds_used_name(node: ast.stmt, used: set[str]) -> bool:
    """An import is kept when a kept definition uses a name it binds (or when it is a star import)."""
    for alias in node.names:
        if alias.name == "*":
            return True
        bound = alias.asname or (alias.name.split(".")[0] if isinstance(node, ast.Import) else alias.name)
        if bound in used:
            return True
    return False


def _reachable(chosen: dict[str, _Definition], entry: str) -> set[str]:
    keep: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in keep or name not in chosen:
            continue
        keep.add(name)
        todo += [n.id for n in ast.walk(chosen[name].node) if isinstance(n, ast.Name)]
        todo += [n.attr for n in ast.walk(chosen[name].node) if isinstance(n, ast.Attribute)]  # self.helper()
    return keep


# ------------------------------------------------------------------------------------------------ shell

_HEREDOC = re.compile(r"cat\s+>\s*(\S+)\s*<<-?\s*(['\"]?)(\w+)\2[^\n]*\n(.*?)\n\s*\3\s*$", re.DOTALL | re.MULTILINE)
_ONE_OFF = re.compile(r"^\s*(\$\s+)?(sudo\s+)?(chmod|chown|crontab|mkdir|touch|install|cp|mv|ln|cat|echo|sudo|"
                      r"systemctl|ls|tail|less|vi|vim|nano)\b")


def shell_script(answer: ParsedAnswer, name_hint: str | None = None) -> str | None:
    """The answer's shell script, or None when it has none.

    A here-document that writes the script (``cat > /opt/fleet/burndown.sh <<'EOF'``) is the script; otherwise
    the largest shell block that is more than one-off commands and crontab lines.
    """
    written: list[str] = []
    candidates: list[str] = []
    for block in answer.blocks:
        if block.language not in ("shell", ""):
            continue
        for target, _, _, body in _HEREDOC.findall(block.code):
            if (name_hint and target.strip("'\"").endswith(name_hint)) or len(body.splitlines()) > 5:
                written.append(body + "\n")
        if block.language == "shell" and not _only_one_offs(block.code):
            candidates.append(block.code)
    pool = written or candidates
    return max(pool, key=lambda code: len(code.strip())) if pool else None


def _only_one_offs(code: str) -> bool:
    lines = [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#!")]
    lines = [line for line in lines if not line.lstrip().startswith("#")]
    return len(lines) <= 3 and all(_ONE_OFF.match(line) or _looks_like_cron(line) for line in lines)


def _looks_like_cron(line: str) -> bool:
    tokens = line.split()
    return len(tokens) >= 6 and all(re.fullmatch(r"[0-9*/,\-]+", t) for t in tokens[:3])


__all__ = ["Program", "defines", "is_python", "python_program", "shell_script"]
