"""Build the program a code check runs from a parsed answer: a Python module, a shell script, crontab lines.

Python (after EvalPlus's sanitizer: by syntax tree, never by picking one fence):

1. Every python block that parses contributes, after taking out shell lines (``%pip install``, ``$ ...``)
   and REPL prompts (``>>>``) when only that makes it parse; a block that still does not parse (e.g. one
   cut off mid-way) is skipped whole.
2. From each block its top-level imports (``from __future__`` first, each distinct import once) and its
   top-level definitions: functions, classes, assignments to names (tuple and list targets, annotated
   assignments), and compound statements whose bodies only import, define or assign (``try: from asyncio
   import TaskGroup / except ImportError: ...``, ``if sys.version_info >= ...:``, ``with``), each a
   definition of every name it binds. With an entry point, an import is
   kept only when a kept definition uses a name it binds (annotations and string annotations count), so
   a usage example importing flask or pytest cannot break the program. Everything else at top level
   (calls, prints, ``if __name__ == "__main__":``, loops) is an example, not the solution, and is dropped.
3. A definition whose syntax tree (docstrings removed) equals a definition of the same name in the
   prompt's own code blocks is the prompt quoted back, not the answer's code.
4. Two definitions of one name: the one that differs from the prompt's wins over a quoted one; then one the
   answer endorses wins over one it rejects. A block is rejected when the prose just before it (its nearest
   paragraphs, nearest first: the first with a marker decides) or its own leading comments reject it
   ("don't do this", "avoid this", "the naive/wrong/insecure version", "is still wrong", ❌, ⚠️, "before:",
   "the original was:", "for contrast", "for reference"), unless an endorsement ("fix", "✅",
   "corrected", "correct version", "instead", "solution") comes after the last rejection in that paragraph;
   a ❌ in any of its comments rejects it too. Among equals,
   the last one written wins (the answer's final word, as in a file read top to bottom). When distinct
   definitions of the entry point remain and no endorsement tells them apart, the choice is *unclear*:
   ``Program.alternatives`` holds the program built with each other candidate, so a check can test them
   all and say when the answer's own candidates behave differently (the verdict is then never clear).
5. With an entry point (the function the task names), only the definitions it reaches by its free names
   (not its parameters or locals: a "Step 2" fragment ``expected = hmac.new(secret, ...)`` at top level is not
   pulled in by the function's own local ``expected``), transitively, are kept, so a test-suite, a demo or a
   stray ``main()`` block cannot break the import; a reached assignment whose value uses a name bound nowhere
   at module level is dropped. Without one, all kept definitions are. ``Program.entry_block`` is the program
   from the entry point's own block alone: the python check tests it when the whole program fails to import,
   and its result is then never certain.

Imports come first, then the definitions in the order they were written.

Shell: the script is a shell block that is not only a crontab line or one-off commands (``chmod +x …``,
``crontab -e``), ranked by ``shell_script``: one the answer does not reject, one that calls the check's stub
commands rather than implementing them (a fake ``podctl`` for local testing), one naming the script path,
a substantial one; among equals the last is graded (the answer's final word) and the others are run too, as
for Python definitions; a script written out by ``cat > file <<'EOF'`` inside a block is taken from the
here-document.
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
from dataclasses import dataclass

from .parse import ParsedAnswer, is_python

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class Program:
    """The code a check runs and how it was put together (one line for the page)."""

    code: str
    note: str
    alternatives: tuple[str, ...] = ()  # the program with each other candidate of the entry point (unclear choice)
    defined: frozenset[str] = frozenset()  # every name the answer's python blocks bind anywhere
    entry_block: str | None = None  # the program from the entry point's own block alone (when it differs)


@dataclass
class _Definition:
    name: str
    node: ast.stmt
    order: tuple[int, int]
    quoted: bool
    source: str
    rejected: bool = False


def _source(code_lines: list[str], node: ast.stmt) -> str:
    """The statement's own text (decorators included), so messages quote the answer's lines as written."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return "\n".join(code_lines[first - 1:node.end_lineno])


def python_program(answer: ParsedAnswer, prompt: ParsedAnswer | None = None, entry: str | None = None) -> Program | None:
    """The answer's Python module, or None when no python block parses."""
    quoted_dumps = _prompt_definitions(prompt)
    imports: list[ast.stmt] = []
    seen_imports: set[str] = set()
    block_imports: dict[int, list[ast.stmt]] = {}
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
        rejected = block_rejected(block.lead, code)
        for position, node in enumerate(tree.body):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                block_imports.setdefault(index, []).append(node)
                dump = ast.dump(node)
                if dump not in seen_imports:
                    seen_imports.add(dump)
                    imports.append(node)
                continue
            for name in _defined_names(node):
                quoted = quoted_dumps.get(name) == _normalised(node)
                definitions.setdefault(name, []).append(
                    _Definition(name, node, (index, position), quoted, _source(code_lines, node), rejected))
    if not used:
        return None
    chosen: dict[str, _Definition] = {}
    for name, candidates in definitions.items():
        chosen[name] = _choose(candidates)
    code = _assemble(chosen, imports, entry)
    alternatives: list[str] = []
    if entry and entry in chosen:
        for other in _unclear_alternatives(definitions[entry], chosen[entry]):
            alternatives.append(_assemble({**chosen, entry: other}, imports, entry))
    keep = _reachable(chosen, entry, _import_names(imports)) if entry and entry in chosen else set(chosen)
    quoted = sorted(name for name, d in chosen.items() if d.quoted and name in keep)
    note = f"program built from {used} python block(s)"
    if skipped:
        note += f", {skipped} that do not parse skipped"
    if any(d.quoted for ds in definitions.values() for d in ds) and not quoted:
        note += "; the prompt's own code quoted back is left out"
    elif quoted:
        note += f"; {', '.join(quoted)} is only the prompt's code quoted back"
    if entry and any(d.rejected for d in definitions.get(entry, [])) and not chosen[entry].rejected:
        note += f"; a {entry} the answer rejects (\"don't do this\") is left out"
    if alternatives:
        note += f"; {len(alternatives) + 1} different definitions of {entry}, none endorsed: the last one is tested"
    entry_block = None
    if entry and entry in chosen:
        # The fallback when the whole program does not import: only the block that defines the entry point.
        home = chosen[entry].order[0]
        own = {name: _choose([d for d in candidates if d.order[0] == home])
               for name, candidates in definitions.items() if any(d.order[0] == home for d in candidates)}
        alone = _assemble(own, block_imports.get(home, []), entry)
        entry_block = alone if alone != code else None
    return Program(code=code, note=note, alternatives=tuple(alternatives), defined=frozenset(bound_names(answer)),
                   entry_block=entry_block)


def _choose(candidates: list[_Definition]) -> _Definition:
    """Not the prompt's code quoted back, then not one the answer rejects, then the last written."""
    own = [d for d in candidates if not d.quoted] or candidates
    endorsed = [d for d in own if not d.rejected] or own
    return endorsed[-1]


def _unclear_alternatives(candidates: list[_Definition], chosen: _Definition) -> list[_Definition]:
    """The other distinct candidates of the entry point when nothing but their order tells them apart."""
    own = [d for d in candidates if not d.quoted]
    pool = [d for d in own if d.rejected == chosen.rejected]
    seen = {_normalised(chosen.node)}
    others = []
    for d in reversed(pool):
        dump = _normalised(d.node)
        if dump not in seen:
            seen.add(dump)
            others.append(d)
    return others


def _assemble(chosen: dict[str, _Definition], imports: list[ast.stmt], entry: str | None) -> str:
    keep = _reachable(chosen, entry, _import_names(imports)) if entry and entry in chosen else set(chosen)
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
    return code.lstrip("\n") + "\n"


# Rejections aimed at the block, not words that merely occur in an explanation ("to avoid the race, ...",
# "don't forget to chmod +x"): "don't do this", "a tempting fix that is still wrong", "the naive version", ❌.
_REJECT = re.compile(
    r"\b(don'?t|do not|never)\s+(do|use|write|copy|deploy)\s+(this|that|it)\b|\bavoid\s+(this|that|doing)\b|"
    r"\b(wrong|bad|naive|insecure|broken|buggy|incorrect|vulnerable|unsafe|tempting|flawed)\b[^.:\n]{0,30}"
    r"\b(version|way|approach|code|implementation|example|fix|pattern|attempt|solution)\b|"
    r"\b(is|are|still)\s+(wrong|broken|buggy|incorrect|insecure|unsafe)\b|"
    r"❌|⚠|anti-?pattern|for contrast|for reference|what not to do|common mistake|\bbefore\s*:", re.IGNORECASE)
_QUOTED_ORIGINAL = re.compile(r"\boriginal\b[^.:\n]{0,40}:\s*$", re.IGNORECASE)  # "the original function was:"
_ENDORSE = re.compile(r"\b(fix|fixe[sd]|corrected|correct (version|code|implementation|way)|instead|solution|"
                      r"secure (version|implementation)|after\s*:)|✅|✔", re.IGNORECASE)
_REJECT_COMMENT = re.compile(r"❌|\bdon'?t (do|use) (this|it)\b|\bdo not (do|use) (this|it)\b|anti-?pattern|"
                             r"\b(wrong|bad|buggy|broken|insecure|naive|vulnerable|old)\s+(version|way|code|"
                             r"implementation|example)\b|\b(before|original)\s*:|\bdon'?t do this\b", re.IGNORECASE)


def block_rejected(lead: str, code: str) -> bool:
    """Whether the answer rejects this block: its lead-in prose or its own comments say not to use it."""
    comments = [line.split("#", 1)[1] for line in code.splitlines() if "#" in line and not line.lstrip().startswith("#!")]
    leading = []
    for line in code.splitlines():
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            break
        leading.append(line.lstrip().lstrip("#!").strip())
    if any("❌" in c for c in comments) or any(_REJECT_COMMENT.search(c) for c in leading):
        return True
    for paragraph in reversed(lead.split("\n\n")):
        reject = [m.start() for m in _REJECT.finditer(paragraph)]
        endorse = [m.start() for m in _ENDORSE.finditer(paragraph)]
        if reject or endorse:
            return bool(reject) and (not endorse or max(reject) > max(endorse))
        if _QUOTED_ORIGINAL.search(paragraph):
            return True
    return False


def bound_names(answer: ParsedAnswer) -> set[str]:
    """Every name a python block of the answer defines outside a function body (at module level, in any
    compound statement, a class body) and every function or class name (for telling an assembly gap from a
    bug: a local variable of another function is no definition)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(child.name)
                names.update(inner.name for inner in ast.walk(child) if isinstance(inner, _DEFINITIONS))
                continue
            if isinstance(child, ast.ClassDef):
                names.add(child.name)
            elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                names.add(child.id)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                names.update(a.asname or a.name.split(".")[0] for a in child.names if a.name != "*")
            visit(child)

    for block in answer.code("python"):
        tree = _parse(_salvaged(block.code) or "")
        if tree:
            visit(tree)
    return names


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
    """The names a top-level statement defines, when it only defines (else none: it is an example)."""
    if isinstance(node, _DEFINITIONS):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [name for t in node.targets for name in _target_names(t)]
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return _target_names(node.target)
    if isinstance(node, (ast.Try, ast.If, ast.With)) and _only_binds(node):
        return sorted(_bound(node))
    return []


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for t in target.elts for name in _target_names(t)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


_QUIET = (ast.Pass, ast.Import, ast.ImportFrom, *_DEFINITIONS)


def _only_binds(node: ast.stmt) -> bool:
    """A compound statement whose bodies only import, define, assign names or pass (or raise/warn, in except)."""
    bodies = [getattr(node, "body", []), getattr(node, "orelse", []), getattr(node, "finalbody", [])]
    bodies += [h.body for h in getattr(node, "handlers", [])]
    if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
        return False  # if __name__ == "__main__": the example, never a definition
    for body in bodies:
        for stmt in body:
            if isinstance(stmt, _QUIET):
                continue
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and _defined_names(stmt):
                continue
            if isinstance(stmt, (ast.Try, ast.If, ast.With)) and _only_binds(stmt):
                continue
            if isinstance(stmt, ast.Raise) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                continue
            return False
    return bool(_bound(node))


def _bound(node: ast.stmt) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Import, ast.ImportFrom)):
            names.update(a.asname or a.name.split(".")[0] for a in sub.names if a.name != "*")
        elif isinstance(sub, (ast.Assign, ast.AnnAssign, *_DEFINITIONS)) and sub is not node:
            names.update(_defined_names(sub))
    return names


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


def _import_names(imports: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in imports:
        for alias in node.names:
            names.add(alias.asname or (alias.name.split(".")[0] if isinstance(node, ast.Import) else alias.name))
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


def _reachable(chosen: dict[str, _Definition], entry: str, module_names: set[str] | None = None) -> set[str]:
    """The definitions the entry point reaches through its FREE names (a parameter or local variable of a
    function is not a reference to a top-level definition of the same name: ``expected = hmac.new(secret,
    ...)`` written as a "Step 2" fragment is not pulled in by the function's own local ``expected``), and
    through attributes (``self.helper()``). A reached assignment whose value uses a name bound nowhere at
    module level (a fragment using the function's parameters) is dropped."""
    bound = set(chosen) | (module_names or set()) | set(dir(builtins))
    keep: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in keep or name not in chosen:
            continue
        node = chosen[name].node
        free = _free_names(node)
        if name != entry and not isinstance(node, _DEFINITIONS) and not free <= bound:
            continue
        keep.add(name)
        todo += sorted(free)
        todo += [n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)]  # self.helper()
    return keep


def _free_names(node: ast.stmt) -> set[str]:
    """The global names a top-level statement reads: every name read at module level, and in function and
    class bodies only those that are neither parameters nor locals (Python's own scope rules, via symtable)."""
    try:
        table = symtable.symtable(ast.unparse(node), "<answer>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    names: set[str] = set()

    def visit(t: symtable.SymbolTable, top: bool) -> None:
        for symbol in t.get_symbols():
            if symbol.is_referenced() and (top or symbol.is_global()):
                names.add(symbol.get_name())
        for child in t.get_children():
            visit(child, False)

    visit(table, True)
    return names


# ------------------------------------------------------------------------------------------------ shell

_HEREDOC = re.compile(r"cat\s+>\s*(\S+)\s*<<-?\s*(['\"]?)(\w+)\2[^\n]*\n(.*?)\n\s*\3\s*$", re.DOTALL | re.MULTILINE)
_ONE_OFF = re.compile(r"^\s*(\$\s+)?(sudo\s+)?(chmod|chown|crontab|mkdir|touch|install|cp|mv|ln|cat|echo|sudo|"
                      r"systemctl|ls|tail|less|vi|vim|nano)\b")


def shell_script(answer: ParsedAnswer, name_hint: str | None = None, stubs: tuple[str, ...] = ()) -> str | None:
    """The answer's shell script (the last of ``shell_scripts``), or None when it has none."""
    scripts = shell_scripts(answer, name_hint, stubs)
    return scripts[-1] if scripts else None


def shell_scripts(answer: ParsedAnswer, name_hint: str | None = None, stubs: tuple[str, ...] = ()) -> list[str]:
    """The answer's candidate shell scripts that rank first, in the answer's order: the last is the one graded
    (an answer's later version is its final word, as for Python definitions), the others are alternatives
    whose different behaviour makes the result uncertain.

    A here-document that writes the script (``cat > /opt/fleet/burndown.sh <<'EOF'``) is the script; otherwise
    a shell block that is more than one-off commands and crontab lines, ranked: not rejected by the answer
    ("don't do this:"), then one that CALLS the stub commands (``podctl list``) rather than implementing
    them (``case "$1" in list)``, a ``podctl()`` function, a here-document writing ``podctl``: a fake for
    local testing), then one that does not implement a command at all, then one naming the script
    (``name_hint``) in itself or its lead-in, then a substantial one (5 lines or more).
    """
    written: list[tuple[tuple, str]] = []
    candidates: list[tuple[tuple, str]] = []
    for block in answer.blocks:
        if block.language not in ("shell", ""):
            continue
        for target, _, _, body in _HEREDOC.findall(block.code):
            target = target.strip("'\"")
            if stubs and target.rsplit("/", 1)[-1] in stubs:
                continue
            if (name_hint and target.endswith(name_hint)) or len(body.splitlines()) > 5:
                written.append((_shell_rank(body + "\n", block.lead, name_hint, stubs, target), body + "\n"))
        if block.language == "shell" and not _only_one_offs(block.code):
            candidates.append((_shell_rank(block.code, block.lead, name_hint, stubs), block.code))
    pool = written or candidates
    if not pool:
        return []
    best = max(rank for rank, _ in pool)
    return [code for rank, code in pool if rank == best]


_DISPATCH = re.compile(r"^\s*case\s+\"?\$\{?(1|@|\*)\b", re.MULTILINE)


def _shell_rank(code: str, lead: str, name_hint: str | None, stubs: tuple[str, ...], target: str = "") -> tuple:
    lines = [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    implements = bool(_DISPATCH.search(code)) or any(
        re.search(rf"^\s*(function\s+)?{re.escape(stub)}\s*\(\s*\)", code, re.MULTILINE) for stub in stubs)
    calls = any(re.search(rf"(?<![\w/.-]){re.escape(stub)}\s+\w", line) for stub in stubs for line in lines
                if not re.match(r"^\s*(echo|printf)\b", line))
    named = bool(name_hint) and (name_hint in code or name_hint in lead or name_hint in target)
    return (not block_rejected(lead, code), calls and not implements, not implements, named, len(lines) >= 5)


def _only_one_offs(code: str) -> bool:
    lines = [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#!")]
    lines = [line for line in lines if not line.lstrip().startswith("#")]
    return len(lines) <= 3 and all(_ONE_OFF.match(line) or _looks_like_cron(line) for line in lines)


def _looks_like_cron(line: str) -> bool:
    tokens = line.split()
    return len(tokens) >= 6 and all(re.fullmatch(r"[0-9*/,\-]+", t) for t in tokens[:3])


__all__ = ["Program", "defines", "is_python", "python_program", "shell_script", "shell_scripts"]
