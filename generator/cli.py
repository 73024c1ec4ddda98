"""The `bench` command: parse flags, load the config, call one library function, print the outcome.

Library errors (BenchError) become one message and an exit code, never a traceback; Ctrl-C or SIGTERM
exits 130 with every finished cell kept.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from . import cache as cache_mod
from . import config, plan, results
from .arguments import build_parser
from .errors import BenchError
from .safety import Redactor, terminal_text


class Terminal:
    """A console for untrusted text (reasons, server messages): secrets redacted, control characters shown
    as visible escapes (ESC → \\x1b), and nothing read as rich markup.

    The rich console behind it is made on first use: importing rich costs ~0.1 s, which a `bench run` would
    otherwise pay before its first request (issue 12, item 8)."""

    redact = Redactor()

    def __init__(self, **options) -> None:
        self._options = options
        self._console = None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def safe(self, text: str) -> str:
        return terminal_text(self.redact(text))

    def print(self, *objects, **kwargs) -> None:
        self.console.print(*(self.safe(o) if isinstance(o, str) else o for o in objects), **kwargs)

    def print_json(self, *args, **kwargs) -> None:
        self.console.print_json(*args, **kwargs)

    def event(self, kind: str, style: str, message: str) -> None:
        """'failed <message>' with only the first word coloured."""
        from rich.text import Text

        self.print(Text.assemble((kind, style), " ", self.safe(message)))


def _bar_shown() -> bool:
    """Whether rich would draw a progress bar on stderr. A transient bar on a pipe or file draws nothing, so
    rich is not even imported then; rich decides itself when stderr is a terminal or the environment forces one."""
    return sys.stderr.isatty() or any(os.environ.get(v) for v in ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE"))


class _NoBar:
    """Progress's few methods used by cmd_run, for when no bar is drawn."""

    def __init__(self) -> None:
        self.tasks = [type("Task", (), {"total": 0})()]

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: int = 0) -> int:
        self.tasks[0].total = total
        return 0

    def update(self, task: int, total: int | None = None, description: str | None = None) -> None:
        if total is not None:
            self.tasks[0].total = total

    def advance(self, task: int) -> None:
        pass


def _ready_to_print() -> None:
    """Import rich and make the consoles before the first answer is printed (called while a model loads)."""
    import rich.text  # noqa: F401

    err.console, out.console  # noqa: B018


def _progress():
    if not _bar_shown():
        return _NoBar()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err.console, transient=True)


err = Terminal(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)
out = Terminal(highlight=False, soft_wrap=True, markup=False, emoji=False)


def _redact_with(redact: Redactor) -> None:
    err.redact = out.redact = redact


def _load(args: argparse.Namespace) -> config.Benchmark:
    """The benchmark; from here on every secret it names is redacted from what is printed."""
    bench = config.load(args.config)
    _redact_with(Redactor.for_benchmark(bench))
    return bench


def _open_cache(args: argparse.Namespace, bench: config.Benchmark) -> cache_mod.AnswerCache:
    return cache_mod.AnswerCache.open(_cache_dir(args), redact=Redactor.for_benchmark(bench))


def _load_results(args: argparse.Namespace) -> results.Portable:
    portable = results.load(args.docs_dir)
    for problem in portable.problems:
        err.event("note", "yellow", problem)
    return portable


def _cache_dir(args: argparse.Namespace) -> str:
    return args.cache_dir or cache_mod.default_dir()


def cmd_validate(args: argparse.Namespace) -> int:
    bench = _load(args)
    checks = sum(len(t.checks) for t in bench.tasks)
    out.print(f"{args.config}: ok ({len(bench.models)} models, {len(bench.tasks)} tasks, {checks} checks)")
    for warning in bench.option_warnings():
        err.print(f"warning: {warning}", markup=False)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .checks import run_checks
    from .decide import CHECK_STRENGTH

    bench = _load(args)
    ids = [t.id for t in bench.tasks]
    if args.task not in ids:
        err.print(f"Error: no task {args.task!r} in {args.config}; tasks: {', '.join(ids)}", markup=False)
        return 2
    try:
        text = Path(args.answer).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        err.print(f"Error: cannot read {args.answer}: {e.strerror or e}", markup=False)
        return 2
    results = run_checks(bench.task(args.task), text)
    for r in results:
        flags = ", ".join(x for x in ("critical" if r.critical else "", CHECK_STRENGTH[config.strength(r.type)]) if x)
        out.print(f"{r.status.upper():<5} {r.name} ({flags}): {r.detail}", markup=False)
        if r.doubt:
            out.print(f"      not certain: {r.doubt}", markup=False)
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error")}
    out.print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} not run or not scored", markup=False)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import run_benchmark

    bench = _load(args)
    store = _open_cache(args, bench)
    try:
        with _progress() as progress:
            bar = progress.add_task("calling models", total=0)

            def on_event(event) -> None:
                if event.kind == "planned":
                    progress.update(bar, total=(progress.tasks[0].total or 0) + event.total)
                elif event.kind in ("answered", "failed"):
                    progress.advance(bar)
                    if event.message:
                        err.event(event.kind, "red" if event.kind == "failed" else "green", event.message)
                elif event.kind == "note":
                    err.event("note", "yellow", event.message)

            def on_stage(stage: str) -> None:
                progress.update(bar, description=stage)

            outcome = run_benchmark(bench, store, args.docs_dir, only=set(args.only), refresh=args.refresh,
                                    on_event=on_event, on_stage=on_stage, while_loading=_ready_to_print)
    finally:
        store.close()
    if outcome.judged:
        err.print(f"judge: {outcome.judged} call(s) made", markup=False)
    out.print(outcome.summary.line())
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .render import render

    bench = _load(args)
    store = _open_cache(args, bench)
    written = render(bench, store, args.docs_dir)
    store.close()
    out.print(f"rendered {args.docs_dir}: {len(written)} file(s) changed")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    bench = _load(args)
    store = _open_cache(args, bench)
    portable = _load_results(args)
    cells = plan.make_plan(bench, store)
    store.close()
    rows = []
    for cell in cells:
        state, reason = cell.state, cell.reason
        if state != "cached" and cell.key in portable.answers:
            state, reason = "committed", "in results.json; 'bench run' copies it into the cache"
        rows.append({"task": cell.task_id, "model": cell.model_id, "state": state, "reason": reason, "key": cell.key})
    if args.json:
        out.print_json(json.dumps(out.redact.tree(rows)))
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


COMMANDS = {"schema": cmd_schema, "validate": cmd_validate, "check": cmd_check, "run": cmd_run, "render": cmd_render, "status": cmd_status, "cache": cmd_cache}


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "allow_unsandboxed", False):
        from .sandbox import OPT_IN_ENV

        os.environ[OPT_IN_ENV] = "1"  # read by generator.sandbox when answer code is about to run
    # Until benchmark.yaml is read, the one secret known is the environment's OLLAMA_API_KEY.
    _redact_with(Redactor([os.environ.get("OLLAMA_API_KEY", "")]))
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        return COMMANDS[args.command](args)
    except BenchError as e:
        err.print(f"Error: {e}", markup=False)
        return e.exit_code
    except OSError as e:  # a --docs-dir or --cache-dir that is a file, unwritable, on a full disk...
        where = f"{e.filename}: " if e.filename else ""
        err.print(f"Error: {where}{e.strerror or e}. Check --docs-dir and --cache-dir.", markup=False)
        return 1
    except KeyboardInterrupt:
        err.print("Interrupted: finished cells are kept; run 'bench run' again to call the rest.", markup=False)
        return 130


def entry() -> None:
    """The `bench` command as a process: main(), then exit without the interpreter's teardown.

    Tearing down every imported module (pydantic's schemas, rich, httpx...) took 90-190 ms after the last
    line was printed, measured on `bench run`; that is most of what a whole process costs beyond the run
    itself (issue 12, item 8). What a normal exit does that matters is done here, in its order: wait for
    threads that are not daemons (then the normal exit is taken), run the atexit handlers (weakref
    finalizers, logging), flush stdout and stderr (a failing flush also takes the normal exit, which reports
    it as Python does)."""
    import atexit
    import threading

    code = main()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    entry()
