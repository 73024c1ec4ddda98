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
- ``charts``: the latency and checks-passed charts (deterministic SVG, redrawn only when their data change);
- ``tables``: CSV tables and what moved between runs;
- ``results_json``: docs/results.json, built from the report records (generator.report), not the views;
- ``files``: writing only what changed, and the fingerprint that lets a render with nothing new do nothing.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import TemplateError, TemplateSyntaxError

from .. import history as history_mod
from .. import results as results_mod
from ..cache import AnswerCache
from ..config import Benchmark
from ..errors import BenchError
from ..report import gather
from .charts import chart_data, checks_svg, draw_charts, latency_svg
from .escape import Markdown, fenced, html_text, inline, nav_title, visible
from .files import RENDER_STATE, encode, fingerprint, remember, unchanged, write
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

    ``banner``: a warning put at the top of every generated page (the demo says on every page what was run).
    """
    docs = Path(docs_dir)
    source = Path(site_src) if site_src else find_site_src(bench)
    portable = results_mod.load(docs)
    report = gather(bench, cache, portable)
    redact = Redactor(bench, report)
    models, tasks = views(report, redact)
    # Charts whose data changed are drawn in a child process while the rest is made (matplotlib's import and
    # drawing are the largest part of a first render, and the machine has a second core). Unchanged charts
    # are kept as they are, so a render with nothing new starts no child.
    charts = draw_charts(docs, {CHART: (chart_data(models, tasks), lambda: latency_svg(models, tasks)),
                                 QUALITY_CHART: (chart_data(models, tasks, checks=True),
                                                 lambda: checks_svg(models, tasks))})
    record = encode(results_file(report, redact).to_json())
    history_path = docs / history_mod.FILENAME
    # Everything the pages are made of is in the record, the benchmark file, the history, the site sources and
    # this code: when none of it changed and docs/ still holds what was written, there is nothing to do.
    inputs = fingerprint(record, history_path.read_bytes() if history_path.exists() else b"", source, bench,
                          banner)
    state_file = Path(getattr(cache, "directory", docs)) / RENDER_STATE
    if unchanged(state_file, docs, inputs):
        charts()  # reaps a child, if one was started
        return []
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
    files[COMPARISON_CSV], files[LATENCY_CSV] = (encode(text) for text in tables_csv(models, tasks))
    history = history_mod.load(docs)
    files[HISTORY] = _page(env, "history.md.j2", HISTORY, **common, moves=history_moves(history, bench),
                           runs=history.runs[::-1])
    files.update(charts())
    for folder, target in ((source / "pages", ""), (source / "css", "assets/")):
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                files[target + path.relative_to(folder).as_posix()] = path.read_bytes()

    changed = [docs / name for name, data in files.items() if write(docs / name, data)]
    for stale in sorted((docs / "tasks").glob("*.md")):
        if f"tasks/{stale.name}" not in files:
            stale.unlink()
            changed.append(stale)
    remember(state_file, docs, inputs, sorted(files))
    return changed


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
