"""Charts as deterministic SVG (matplotlib): the same data give the same bytes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

from .escape import svg_text
from .formats import duration
from .views import ModelView, TaskView

CHART_MAX_TASKS = 24  # above this, one bar per task is unreadable: the chart shows each model's spread


def latency_svg(models: list[ModelView], tasks: list[TaskView]) -> str:
    """Each task's latency per model (grouped bars), or per model a box plot when there are many tasks.

    Deterministic SVG: a fixed hash salt, no date or creator, text as <text> so fonts do not change bytes.
    """
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    rc = {"svg.hashsalt": "big-brain-bench", "svg.fonttype": "none", "text.parse_math": False,
          "font.family": "DejaVu Sans", "font.size": 10}
    latencies = {m.id: [(j, t.report.cell(m.id).answer) for j, t in enumerate(tasks)] for m in models}
    with matplotlib.rc_context(rc):
        many = len(tasks) > CHART_MAX_TASKS
        any_answer = any(a is not None for values in latencies.values() for _, a in values)
        rows = 1 if not any_answer else len(models) if many else len(tasks) * max(1, len(models))
        fig = Figure(figsize=(8, 1.6 + 0.45 * rows), facecolor="white")
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        if not any_answer:
            ax.set_xlim(0, 1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, "No answers yet", transform=ax.transAxes, ha="center", va="center", fontsize=14,
                    color="#555555")
        elif many:
            _box_chart(ax, models, latencies, len(tasks))
        else:
            _bar_chart(ax, models, tasks, latencies)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def _bar_chart(ax, models: list[ModelView], tasks: list[TaskView], latencies: dict) -> None:
    group = 0.8 / max(1, len(models))
    for i, m in enumerate(models):
        ys, xs, missing = [], [], []
        for j, answer in latencies[m.id]:
            y = j + (i - (len(models) - 1) / 2) * group
            if answer is None:
                missing.append(y)
            else:
                ys.append(y)
                xs.append(answer.latency_ms / 1000)
        bars = ax.barh(ys, xs, height=group * 0.9, color=CHART_COLORS[i % len(CHART_COLORS)], label=svg_text(m.label))
        ax.bar_label(bars, labels=[duration(x * 1000) for x in xs], padding=3, fontsize=8)
        for y in missing:
            ax.text(0, y, " no answer", va="center", fontsize=8, color="#b00020")
    ax.set_yticks(range(len(tasks)), ["\n".join(textwrap.wrap(svg_text(t.spec.title), 26)) for t in tasks])
    ax.invert_yaxis()
    ax.set_xlabel("answer latency, seconds (wall clock; model load excluded)")
    ax.set_xlim(left=0)
    ax.margins(x=0.15)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=max(1, len(models)), frameon=False)


def _box_chart(ax, models: list[ModelView], latencies: dict, n_tasks: int) -> None:
    data, labels = [], []
    for m in models:
        values = [a.latency_ms / 1000 for _, a in latencies[m.id] if a is not None]
        data.append(values or [float("nan")])
        labels.append(f"{svg_text(m.label)}\n{len(values)} of {n_tasks} answered")
    try:
        parts = ax.boxplot(data, orientation="horizontal", patch_artist=True, widths=0.6)  # matplotlib >= 3.10
    except TypeError:
        parts = ax.boxplot(data, vert=False, patch_artist=True, widths=0.6)
    for i, box in enumerate(parts["boxes"]):
        box.set_facecolor(CHART_COLORS[i % len(CHART_COLORS)])
    ax.set_yticks(range(1, len(models) + 1), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"answer latency per task, seconds ({n_tasks} tasks; each task's value is in the table)")
    ax.set_xlim(left=0)


CHART_COLORS = ["#3f51b5", "#ff9800", "#009688", "#e91e63", "#8bc34a", "#795548"]


def _figure(rows: int):
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 1.6 + 0.45 * rows), facecolor="white")
    FigureCanvasSVG(fig)
    return matplotlib, fig


RC = {"svg.hashsalt": "big-brain-bench", "svg.fonttype": "none", "text.parse_math": False,
      "font.family": "DejaVu Sans", "font.size": 10}


def checks_svg(models: list[ModelView], tasks: list[TaskView]) -> str:
    """Checks passed per task and model (share of the checks that ran; 'n/m' on each bar), beside the latency chart.

    With many tasks, one bar per model: all checks passed over all checks that ran. Deterministic like latency_svg.
    """
    import matplotlib

    def counted(cell) -> tuple[int, int] | None:
        if cell.answer is None or not cell.checks:
            return None
        ran = [r for r in cell.checks if getattr(r, "status", "pass") != "error"]
        return sum(r.passed for r in ran), len(ran)

    many = len(tasks) > CHART_MAX_TASKS
    data = {m.id: [counted(t.report.cell(m.id)) for t in tasks] for m in models}
    anything = any(v is not None for values in data.values() for v in values)
    with matplotlib.rc_context(RC):
        rows = 1 if not anything else len(models) if many else len(tasks) * max(1, len(models))
        _, fig = _figure(rows)
        ax = fig.add_subplot()
        if not anything:
            ax.set_xlim(0, 1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, "No checked answers yet", transform=ax.transAxes, ha="center", va="center",
                    fontsize=14, color="#555555")
        elif many:
            for i, m in enumerate(models):
                passed = sum(v[0] for v in data[m.id] if v)
                ran = sum(v[1] for v in data[m.id] if v)
                bars = ax.barh([i], [passed / ran * 100 if ran else 0], color=CHART_COLORS[i % len(CHART_COLORS)])
                ax.bar_label(bars, labels=[f"{passed}/{ran}"], padding=3, fontsize=8)
            ax.set_yticks(range(len(models)), [svg_text(m.label) for m in models])
            ax.invert_yaxis()
            ax.set_xlabel(f"checks passed, % of the checks that ran, over {len(tasks)} tasks")
            ax.set_xlim(0, 115)
        else:
            group = 0.8 / max(1, len(models))
            for i, m in enumerate(models):
                ys, xs, labels, none = [], [], [], []
                for j, v in enumerate(data[m.id]):
                    y = j + (i - (len(models) - 1) / 2) * group
                    if v is None or v[1] == 0:
                        none.append(y)
                    else:
                        ys.append(y)
                        xs.append(v[0] / v[1] * 100)
                        labels.append(f"{v[0]}/{v[1]}")
                bars = ax.barh(ys, xs, height=group * 0.9, color=CHART_COLORS[i % len(CHART_COLORS)],
                               label=svg_text(m.label))
                ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
                for y in none:
                    ax.text(1, y, " no checks / no answer", va="center", fontsize=8, color="#777777")
            ax.set_yticks(range(len(tasks)), ["\n".join(textwrap.wrap(svg_text(t.spec.title), 26)) for t in tasks])
            ax.invert_yaxis()
            ax.set_xlabel("checks passed, % of the checks that ran (n/m on each bar)")
            ax.set_xlim(0, 115)
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=max(1, len(models)), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def chart_data(models, tasks, checks: bool = False) -> list:
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


def draw_charts(docs: Path, charts: dict[str, tuple[list, Callable[[], str]]]) -> Callable[[], dict[str, bytes]]:
    """Each chart's SVG, drawn only when its data (or the chart code) changed; the data's hash is kept in it.

    Returns a function that gives the SVGs: the drawing runs meanwhile in a forked child where that is safe
    (a single-threaded process with fork), else when the function is called.
    """
    code = Path(__file__).read_bytes()
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
