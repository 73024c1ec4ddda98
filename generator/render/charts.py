"""Charts as deterministic SVG (matplotlib): the same data give the same bytes."""

from __future__ import annotations

import io
import textwrap

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
    parts = ax.boxplot(data, vert=False, patch_artist=True, widths=0.6)
    for i, box in enumerate(parts["boxes"]):
        box.set_facecolor(CHART_COLORS[i % len(CHART_COLORS)])
    ax.set_yticks(range(1, len(models) + 1), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"answer latency per task, seconds ({n_tasks} tasks; each task's value is in the table)")
    ax.set_xlim(left=0)


CHART_COLORS = ["#3f51b5", "#ff9800", "#009688", "#e91e63", "#8bc34a", "#795548"]
