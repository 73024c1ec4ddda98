"""The small exception tree every user-facing failure belongs to; the CLI prints these without a traceback."""

from __future__ import annotations


class BenchError(Exception):
    """A problem the user can act on. The CLI prints ``str(error)`` and exits with ``exit_code``."""

    exit_code = 1


class ConfigError(BenchError):
    """benchmark.yaml (or a file it names) is broken. Holds every problem found, each with its key path."""

    exit_code = 2

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = [f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"]
        lines += [f"  - {p}" for p in problems]
        lines.append("Fix the file and run 'bench validate' again.")
        super().__init__("\n".join(lines))


class UsageError(BenchError):
    """A command-line argument names something that does not exist."""

    exit_code = 2


class CacheError(BenchError):
    """The answer cache cannot be opened or is in use."""

    exit_code = 1


class CacheBusy(CacheError):
    """Another run holds the cache."""


class ProviderError(BenchError):
    """A model call failed. ``reason`` is one line for the page; ``transient`` says whether a retry may help."""

    def __init__(self, reason: str, *, kind: str = "error", transient: bool = False):
        self.reason = reason
        self.kind = kind
        self.transient = transient
        super().__init__(reason)
