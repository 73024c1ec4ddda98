"""What render writes, and when it need not: files written only when their bytes change, and a fingerprint
of everything the pages are made of, kept beside the answer cache (local, never committed), so that a render
with nothing changed makes no page at all.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..config import Benchmark


def write(path: Path, data: bytes) -> bool:
    """Write ``data`` unless the file already holds exactly it. Returns whether the file changed."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a reader (mkdocs serve) never sees half a file
    return True


def encode(text: str) -> bytes:
    # A lone surrogate cannot be UTF-8; in results.json it becomes the JSON escape it came from (\udXXX).
    return text.encode("utf-8", "backslashreplace")


RENDER_STATE = "render-state.json"  # beside the answer cache: local, never committed


def fingerprint(record: bytes, history: bytes, source: Path, bench: Benchmark, banner: str | None) -> str:
    digest = hashlib.sha256()
    for part in (record, history, (banner or "").encode(), bench.source_sha256.encode(),
                 str(bench.report.show_hosts).encode()):
        digest.update(hashlib.sha256(part).digest())
    code = Path(__file__).resolve().parent.parent
    for path in sorted([*source.rglob("*"), *code.rglob("*.py")]):
        if path.is_file():
            digest.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def stats(docs: Path, names: list[str]) -> dict[str, list[int]] | None:
    out = {}
    for name in names:
        try:
            st = (docs / name).stat()
        except OSError:
            return None
        out[name] = [st.st_size, st.st_mtime_ns]
    return out


def unchanged(state_file: Path, docs: Path, inputs: str) -> bool:
    """The last render here had these inputs, and every file it wrote is still as it left it."""
    try:
        state = json.loads(state_file.read_text(encoding="utf-8")).get(str(docs.resolve()))
    except (OSError, ValueError, AttributeError):
        return False
    if not isinstance(state, dict) or state.get("inputs") != inputs:
        return False
    files = state.get("files") or {}
    tasks_now = {f"tasks/{p.name}" for p in (docs / "tasks").glob("*.md")}
    return stats(docs, list(files)) == files and tasks_now <= set(files)


def remember(state_file: Path, docs: Path, inputs: str, names: list[str]) -> None:
    try:
        states = json.loads(state_file.read_text(encoding="utf-8"))
        states = states if isinstance(states, dict) else {}
    except (OSError, ValueError):
        states = {}
    states[str(docs.resolve())] = {"inputs": inputs, "files": stats(docs, names) or {}}
    try:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_name(f".{state_file.name}.tmp")
        tmp.write_text(json.dumps(states), encoding="utf-8")
        os.replace(tmp, state_file)
    except OSError:
        pass  # without the state the next render just does the work again
