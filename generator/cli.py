"""The `bench` command: parse flags, load the config, call one library function, print the outcome.

Library errors (BenchError) become one message and an exit code, never a traceback; Ctrl-C or SIGTERM
exits 130 with every finished cell kept.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import cache as cache_mod
from . import config, plan, results
from .errors import BenchError

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="benchmark.yaml", metavar="PATH", help="benchmark file (default: benchmark.yaml)")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="answer cache (default: $BENCH_CACHE_DIR or .cache/bench)")
    p.add_argument("--docs-dir", default="docs", metavar="DIR", help="where pages are written (default: docs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="Benchmark LLMs declared in benchmark.yaml.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _common(sub.add_parser("validate", help="check benchmark.yaml and list every problem"))
    p = sub.add_parser("run", help="call models for the cells the cache lacks")
    _common(p)
    p.add_argument("--refresh", action="store_true", help="call selected cells even when cached")
    p.add_argument("--only", nargs="+", default=[], metavar="ID", help="only these task or model ids")
    _common(sub.add_parser("render", help="write docs/ from the cache (never calls a model)"))
    p = sub.add_parser("status", help="each cell: cached, missing or failed, with the reason")
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("schema", help="print the JSON Schema of benchmark.yaml (for editors)")
    p = sub.add_parser("cache", help="inspect or clear the answer cache")
    _common(p)
    p.add_argument("action", choices=["info", "clear"], help="info: counts per kind; clear: delete the cache")
    return parser


def _cache_dir(args: argparse.Namespace) -> str:
    return args.cache_dir or cache_mod.default_dir()


def cmd_validate(args: argparse.Namespace) -> int:
    bench = config.load(args.config)
    checks = sum(len(t.checks) for t in bench.tasks)
    out.print(f"{args.config}: ok ({len(bench.models)} models, {len(bench.tasks)} tasks, {checks} checks)")
    for warning in bench.option_warnings():
        err.print(f"warning: {warning}", markup=False)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from . import history
    from .evaluate import run_judge
    from .records import utc_now
    from .report import gather
    from .run import run

    bench = config.load(args.config)
    portable = results.load(args.docs_dir)
    store = cache_mod.AnswerCache.open(_cache_dir(args))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        bar = progress.add_task("calling models", total=0)

        def on_event(event) -> None:
            if event.kind == "planned":
                progress.update(bar, total=(progress.tasks[0].total or 0) + event.total)
            elif event.kind in ("answered", "failed"):
                progress.advance(bar)
                style = "red" if event.kind == "failed" else "green"
                progress.console.print(f"[{style}]{event.kind}[/] {escape(event.message)}", markup=True)
            elif event.kind == "note":
                progress.console.print(f"[yellow]note[/] {escape(event.message)}", markup=True)

        summary = run(bench, store, portable, only=set(args.only), refresh=args.refresh, on_event=on_event)
        if bench.judge is not None:
            progress.update(bar, description="judging pairs")
            judged = run_judge(bench, store, portable)
            if judged:
                progress.console.print(f"judge: {judged} pair(s) judged", markup=False)
    if summary.called:
        err.print("checking the new answers...", markup=False)
        report = gather(bench, store, portable)  # runs the checks now, so render finds them cached
        history.record(args.docs_dir, history.snapshot(report, sorted(summary.called_cells), utc_now()))
    store.close()
    out.print(summary.line())
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .render import render

    bench = config.load(args.config)
    store = cache_mod.AnswerCache.open(_cache_dir(args))
    written = render(bench, store, args.docs_dir)
    store.close()
    out.print(f"rendered {args.docs_dir}: {len(written)} file(s) changed")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    bench = config.load(args.config)
    store = cache_mod.AnswerCache.open(_cache_dir(args))
    portable = results.load(args.docs_dir)
    cells = plan.make_plan(bench, store)
    store.close()
    rows = []
    for cell in cells:
        state, reason = cell.state, cell.reason
        if state != "cached" and cell.key in portable.answers:
            state, reason = "committed", "in results.json; 'bench run' copies it into the cache"
        rows.append({"task": cell.task_id, "model": cell.model_id, "state": state, "reason": reason, "key": cell.key})
    if args.json:
        out.print_json(json.dumps(rows))
        return 0
    width = max(len(f"{r['task']} × {r['model']}") for r in rows)
    for r in rows:
        label = f"{r['task']} × {r['model']}".ljust(width)
        out.print(f"{label}  {r['state']:<9}  {r['reason'] or ''}".rstrip(), markup=False)
    counts = {s: sum(r["state"] == s for r in rows) for s in ("cached", "committed", "missing", "failed")}
    out.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no cells")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    directory = _cache_dir(args)
    if args.action == "clear":
        existed = cache_mod.clear(directory)
        out.print(f"cleared {directory}" if existed else f"no cache at {directory}")
        return 0
    store = cache_mod.AnswerCache.open(directory)
    counts = store.info()
    store.close()
    out.print(f"{directory}: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "empty"))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(config.json_schema())
    return 0


COMMANDS = {"schema": cmd_schema, "validate": cmd_validate, "run": cmd_run, "render": cmd_render, "status": cmd_status, "cache": cmd_cache}


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        return COMMANDS[args.command](args)
    except BenchError as e:
        err.print(f"Error: {e}", markup=False)
        return e.exit_code
    except KeyboardInterrupt:
        err.print("Interrupted: finished cells are kept; run 'bench run' again to call the rest.", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
