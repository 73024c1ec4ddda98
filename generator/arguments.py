"""The `bench` command line: its commands and their flags (stdlib only: head_start reads a `bench run`'s
flags with this same parser before the heavy imports)."""

from __future__ import annotations

import argparse
import re


class Parser(argparse.ArgumentParser):
    """argparse with a suggestion for a mistyped command ('bench rnu' → did you mean 'run'?)."""

    def error(self, message: str):
        import difflib  # only on a mistake: ~5 ms otherwise paid by every command

        bad = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        commands = re.findall(r"'([^']*)'", bad.group(2)) if bad else []
        close = difflib.get_close_matches(bad.group(1), commands, n=1) if bad else []
        if close:
            message += f"\ndid you mean 'bench {close[0]}'?"
        super().error(message)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="benchmark.yaml", metavar="PATH", help="benchmark file (default: benchmark.yaml)")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="answer cache (default: $BENCH_CACHE_DIR or .cache/bench)")
    p.add_argument("--docs-dir", default="docs", metavar="DIR", help="where pages are written (default: docs)")


def _sandbox_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-unsandboxed", action="store_true",
                   help="run answer code without bubblewrap when it is missing (unsafe; pages say so)")


def build_parser(parser_class: type[argparse.ArgumentParser] = Parser) -> argparse.ArgumentParser:
    """The `bench` command line; ``parser_class`` makes it and its subcommands (head_start's reads quietly)."""
    parser = parser_class(prog="bench", description="Benchmark LLMs declared in benchmark.yaml: call them, check their "
                     "answers and write a MkDocs site that compares them with its evidence.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=f"{help[0].upper()}{help[1:]}. {description}")

    _common(command("validate", "check benchmark.yaml and list every problem",
                    "Each problem names its key path (and line); test code that does not compile is a problem "
                    "too. Exit code 2 when there is any. Calls no model."))
    p = command("check", "run a task's checks on an answer file, before paying for model calls",
                "Prints each check's status (pass, fail, or error when it could not run), its kind of evidence "
                "and its detail. Rubric checks need the judge model, so they are not scored here.")
    _common(p)
    p.add_argument("task", metavar="TASK", help="task id in benchmark.yaml")
    p.add_argument("answer", metavar="ANSWER.md", help="a file holding an answer as a model would write it")
    _sandbox_option(p)
    p = command("run", "call models for the cells the cache lacks",
                "Seeds the cache from docs/results.json first, calls each missing cell once, judges new pairs "
                "when a judge is configured, runs the checks and records the run in docs/history.json. "
                "A model that is down is reported, not fatal.")
    _common(p)
    p.add_argument("--refresh", action="store_true", help="call selected cells even when cached")
    p.add_argument("--only", nargs="+", default=[], metavar="ID", help="only these task or model ids")
    _sandbox_option(p)
    p = command("render", "write docs/ from the cache (never calls a model)",
                "Writes the pages, charts and results.json from the cache and the committed results.json; "
                "a file is written only when its bytes change.")
    _common(p)
    _sandbox_option(p)
    p = command("status", "each cell: cached, missing or failed, with the reason",
                "Reads the cache and docs/results.json; calls no model.")
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    command("schema", "print the JSON Schema of benchmark.yaml (for editors)",
            "Point your editor's YAML language server at it for completion and checks as you type.")
    p = command("cache", "inspect or clear the answer cache",
                "'info' counts the entries per kind; 'clear' deletes the cache (docs/results.json keeps every "
                "committed answer).")
    _common(p)
    p.add_argument("action", choices=["info", "clear"], help="info: counts per kind; clear: delete the cache")
    return parser
