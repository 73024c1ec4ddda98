"""Stage 6, render: the site's Markdown pages, the latency chart and docs/results.json, from the cache alone.

`render()` reads the committed docs/results.json, gathers every cell's answer or failure and its evidence
(cache first, then results.json), and writes into docs/:

- ``index.md``: what the benchmark is, how to read it, a link to every page;
- ``big-brain-benchmark.md``: run date, environment, comparison, latency, key findings, method;
- ``tasks/<task-id>.md``: verdict, what decided it, prompt, reference, the answers side by side;
- ``results.json``: everything above, machine-readable (generator.results.ResultsFile);
- ``assets/latency.svg``, ``assets/checks.svg``, ``assets/*.css`` and the hand-written pages of
  ``site_src/pages``.

It never calls a model. It is deterministic: the same benchmark, cache and results.json give byte-identical
files (dates shown are run dates, never the render's), a file is written only when its bytes change, and
when nothing it is made of changed since the last render into the same docs/ (a fingerprint of the record,
the history, benchmark.yaml, site_src and this code, kept beside the answer cache) no page is made at all;
task pages of tasks no longer in the benchmark are removed. With ``report.show_hosts: false`` every host
(URL, host:port and host name) is replaced by "redacted" in every text render writes; header values
(secrets) are replaced by "[secret]" always.

The package, one job per module:

- ``escape``: how untrusted text is made safe in Markdown, HTML, the nav and SVG (its guarantees are there);
- ``views``: the models, tasks and cells as the pages show them (redacted);
- ``pages``: the Jinja environment, key findings and method notes;
- ``answers``: an answer rendered as the model meant it (Markdown, sanitized) beside its exact raw text;
- ``charts``: the latency and checks-passed charts (deterministic SVG);
- ``tables``: CSV tables and what moved between runs;
- ``results_json``: docs/results.json, built from the report records (generator.report), not the views.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from jinja2 import TemplateError, TemplateSyntaxError

from .. import history as history_mod
from .. import results as results_mod
from ..report import gather
from ..cache import AnswerCache
from ..config import Benchmark
from ..errors import BenchError
from .charts import checks_svg, latency_svg
from .escape import Markdown, fenced, html_text, inline, nav_title, visible
from .formats import run_date
from .pages import environment, findings, latency_totals, method
from .results_json import results_file
from .tables import history_moves, tables_csv
from .views import Redactor, views

SUMMARY = "big-brain-benchmark.md"
HISTORY = "history.md"
COMPARISON_CSV = "comparison.csv"
LATENCY_CSV = "latency.csv"
CHART = "assets/latency.svg"
QUALITY_CHART = "assets/checks.svg"


def find_site_src(bench: Benchmark) -> Path:
    """site_src beside benchmark.yaml, else the one beside this package (a checkout), else ./site_src."""
    here = Path(__file__).resolve().parent.parent.parent / "site_src"
    candidates = [Path(bench.source_path).parent / "site_src"] if bench.source_path else []
    candidates += [here, Path.cwd() / "site_src"]
    for candidate in candidates:
        if (candidate / "templates").is_dir():
            return candidate
    raise BenchError("site_src/templates not found beside benchmark.yaml or the generator package; "
                     "render needs the site templates from the project checkout.")


def _write(path: Path, data: bytes) -> bool:
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


def _encode(text: str) -> bytes:
    # A lone surrogate cannot be UTF-8; in results.json it becomes the JSON escape it came from (\udXXX).
    return text.encode("utf-8", "backslashreplace")


def _page(env, template: str, page: str, **context) -> bytes:
    """One page from its template; a template error names the page and the template line, without a traceback."""
    try:
        return env.get_template(template).render(**context).encode()
    except TemplateSyntaxError as e:
        raise BenchError(f"cannot render {page}: site_src/templates/{e.name or template}, line {e.lineno}: "
                         f"{e.message}") from None
    except TemplateError as e:
        raise BenchError(f"cannot render {page}: site_src/templates/{template}: {e}") from None


def render(bench: Benchmark, cache: AnswerCache, docs_dir: str | Path, *, site_src: str | Path | None = None,
           banner: str | None = None) -> list[Path]:
    """Write docs/ from the cache and the committed results.json. Returns the files whose content changed.

    ``banner``: a warning put at the top of every generated page (the demo marks its pages simulated).
    """
    docs = Path(docs_dir)
    source = Path(site_src) if site_src else find_site_src(bench)
    portable = results_mod.load(docs)
    report = gather(bench, cache, portable)
    redact = Redactor(bench, report)
    record = _encode(results_file(report, redact).to_json())
    history_path = docs / history_mod.FILENAME
    # Everything the pages are made of is in the record, the benchmark file, the history, the site sources and
    # this code: when none of it changed and docs/ still holds what was written, there is nothing to do.
    inputs = _fingerprint(record, history_path.read_bytes() if history_path.exists() else b"", source, bench,
                          banner)
    state_file = Path(getattr(cache, "directory", docs)) / RENDER_STATE
    if _unchanged(state_file, docs, inputs):
        return []
    models, tasks = views(report, redact)
    # Charts whose data changed are drawn in a child process while the pages are made (matplotlib's import
    # and drawing are the largest part of a first render, and the machine has a second core).
    charts = _charts(docs, {CHART: (_chart_data(models, tasks), lambda: latency_svg(models, tasks)),
                            QUALITY_CHART: (_chart_data(models, tasks, checks=True), lambda: checks_svg(models, tasks))})
    env = environment(source / "templates")
    common = {"bench": bench, "models": models, "tasks": tasks, "banner": banner, "summary": SUMMARY,
              "run_date": run_date(report.generated_at),
              "answered": sum(c.answer is not None for t in report.tasks for c in t.cells),
              "cells": len(report.tasks) * len(report.models)}

    files: dict[str, bytes] = {}
    files["index.md"] = _page(env, "index.md.j2", "index.md", **common)
    files[SUMMARY] = _page(env, "summary.md.j2", SUMMARY, **common, findings=findings(report, models, tasks),
                           method=method(bench), chart=Markdown(CHART),
                           quality_chart=Markdown(QUALITY_CHART), latency_totals=latency_totals(models, tasks))
    for t in tasks:
        files[t.page] = _page(env, "task.md.j2", t.page, **common, task=t)
    files[results_mod.FILENAME] = record
    files[COMPARISON_CSV], files[LATENCY_CSV] = (_encode(text) for text in tables_csv(models, tasks))
    history = history_mod.load(docs)
    files[HISTORY] = _page(env, "history.md.j2", HISTORY, **common, moves=history_moves(history, bench),
                           runs=history.runs[::-1])
    files.update(charts())
    for folder, target in ((source / "pages", ""), (source / "css", "assets/")):
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                files[target + path.relative_to(folder).as_posix()] = path.read_bytes()

    changed = [docs / name for name, data in files.items() if _write(docs / name, data)]
    for stale in sorted((docs / "tasks").glob("*.md")):
        if f"tasks/{stale.name}" not in files:
            stale.unlink()
            changed.append(stale)
    _remember(state_file, docs, inputs, sorted(files))
    return changed


def _chart_data(models, tasks, checks: bool = False) -> list:
    """What a chart plots, and nothing else: when it is unchanged, the chart is not drawn again."""
    rows = []
    for t in tasks:
        values = []
        for c in t.cells:
            if c.answer is None:
                values.append(None)
            elif checks:
                ran = [r for r in c.cell.checks if getattr(r, "status", "pass") != "error"]
                values.append([sum(r.passed for r in ran), len(ran)])
            else:
                values.append(c.answer.latency_ms)
        rows.append([t.spec.title, values])
    return [[m.id, m.label] for m in models] + rows


def _charts(docs: Path, charts: dict[str, tuple[list, Callable[[], str]]]) -> Callable[[], dict[str, bytes]]:
    """Each chart's SVG, drawn only when its data (or the chart code) changed; the data's hash is kept in it.

    Returns a function that gives the SVGs: the drawing runs meanwhile in a forked child where that is safe
    (a single-threaded process with fork), else when the function is called.
    """
    code = (Path(__file__).parent / "charts.py").read_bytes()
    kept: dict[str, bytes] = {}
    todo: dict[str, tuple[bytes, Callable[[], str]]] = {}
    for name, (data, draw) in charts.items():
        key = hashlib.sha256(json.dumps(data, ensure_ascii=False, default=str).encode("utf-8", "replace") + code)
        mark = f"<!-- bench-chart {key.hexdigest()} -->".encode()
        try:
            old = (docs / name).read_bytes()
        except OSError:
            old = b""
        if old.split(b"\n", 2)[1:2] == [mark]:
            kept[name] = old  # matplotlib is not even imported
        else:
            todo[name] = (mark, draw)

    def marked(name: str, svg: str) -> bytes:
        first, rest = svg.encode().split(b"\n", 1)
        return first + b"\n" + todo[name][0] + b"\n" + rest

    def inline() -> dict[str, bytes]:
        return {**kept, **{name: marked(name, draw()) for name, (_, draw) in todo.items()}}

    if not todo or not hasattr(os, "fork") or threading.active_count() > 1:
        return inline  # forking a threaded process (mkdocs serve) could leave a lock held in the child
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: draw, send, and leave without running the parent's exit handlers
        status = 1
        try:
            with os.fdopen(write, "wb") as out:
                out.write(json.dumps({name: draw() for name, (_, draw) in todo.items()}).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)

    def collect() -> dict[str, bytes]:
        with os.fdopen(read, "rb") as got:
            payload = got.read()
        _, status = os.waitpid(pid, 0)
        if status != 0:
            return inline()  # the child failed: draw here, so that any error is the usual one
        drawn = json.loads(payload)
        return {**kept, **{name: marked(name, drawn[name]) for name in todo}}

    return collect


RENDER_STATE = "render-state.json"  # beside the answer cache: local, never committed


def _fingerprint(record: bytes, history: bytes, source: Path, bench: Benchmark, banner: str | None) -> str:
    digest = hashlib.sha256()
    for part in (record, history, (banner or "").encode(), bench.source_sha256.encode(),
                 str(bench.report.show_hosts).encode()):
        digest.update(hashlib.sha256(part).digest())
    code = Path(__file__).resolve().parent.parent
    for path in sorted([*source.rglob("*"), *code.rglob("*.py")]):
        if path.is_file():
            digest.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _stats(docs: Path, names: list[str]) -> dict[str, list[int]] | None:
    out = {}
    for name in names:
        try:
            st = (docs / name).stat()
        except OSError:
            return None
        out[name] = [st.st_size, st.st_mtime_ns]
    return out


def _unchanged(state_file: Path, docs: Path, inputs: str) -> bool:
    """The last render here had these inputs, and every file it wrote is still as it left it."""
    try:
        state = json.loads(state_file.read_text(encoding="utf-8")).get(str(docs.resolve()))
    except (OSError, ValueError, AttributeError):
        return False
    if not isinstance(state, dict) or state.get("inputs") != inputs:
        return False
    files = state.get("files") or {}
    tasks_now = {f"tasks/{p.name}" for p in (docs / "tasks").glob("*.md")}
    return _stats(docs, list(files)) == files and tasks_now <= set(files)


def _remember(state_file: Path, docs: Path, inputs: str, names: list[str]) -> None:
    try:
        states = json.loads(state_file.read_text(encoding="utf-8"))
        states = states if isinstance(states, dict) else {}
    except (OSError, ValueError):
        states = {}
    states[str(docs.resolve())] = {"inputs": inputs, "files": _stats(docs, names) or {}}
    try:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_name(f".{state_file.name}.tmp")
        tmp.write_text(json.dumps(states), encoding="utf-8")
        os.replace(tmp, state_file)
    except OSError:
        pass  # without the state the next render just does the work again


NAV_TASKS_MAX = 40  # every page carries the whole nav: past this, listing each task there costs O(tasks²)
TOOL_SPEED = "tool-speed.md"  # written by `make perf`: the generator's own timings, not the models'


def nav(bench: Benchmark, docs_dir: str | Path) -> list:
    """The site navigation in benchmark order (set by the MkDocs hook), with any other top-level page of docs/.

    Up to NAV_TASKS_MAX tasks are listed one by one; a larger benchmark reaches its task pages through the
    tables of Home and Summary, so that building the site stays linear in the number of tasks.
    Titles go through ``nav_title``: themes insert nav titles unescaped, and Material's striptags unescapes.
    The tool's own timings (``make perf``) sit under About, so that no one reads them as model performance.
    """
    tasks = [{nav_title(t.title): f"tasks/{t.id}.md"} for t in bench.tasks]
    known = {"index.md", SUMMARY, "about.md", HISTORY, TOOL_SPEED}
    others = sorted(p.name for p in Path(docs_dir).glob("*.md") if p.name not in known)
    listed = [{"Tasks": tasks}] if len(tasks) <= NAV_TASKS_MAX else []
    about: list | str = "about.md"
    if (Path(docs_dir) / TOOL_SPEED).exists():
        about = [{"About this site": "about.md"}, {"Generator speed (not model performance)": TOOL_SPEED}]
    return [{"Home": "index.md"}, {"Summary": SUMMARY}, *listed, {"History": HISTORY}, *others, {"About": about}]


__all__ = ["Markdown", "fenced", "html_text", "inline", "nav", "nav_title", "render", "results_file", "visible"]
