"""The on-disk answer cache (diskcache): answers, last failed attempts, model probes, check and judge results.

Values are stored as JSON text, never pickle, so a cache can be inspected and a damaged entry is only a
miss. Each put is one SQLite transaction: an interrupted run leaves whole entries or none. Every value
passes the run's Redactor on its way in, so no secret a server echoed is ever stored.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TypeVar

import diskcache
from pydantic import BaseModel, ValidationError

from .errors import CacheBusy, CacheError
from .records import Answer, CheckResult, Failure, JudgeResult, ModelProbe
from .safety import Redactor, clean_tree

DEFAULT_DIR = ".cache/bench"
R = TypeVar("R", bound=BaseModel)


def default_dir() -> str:
    return os.environ.get("BENCH_CACHE_DIR") or DEFAULT_DIR


class AnswerCache:
    """Answers and attempts by cache key; probes by model id. Open with ``AnswerCache.open(dir)``."""

    def __init__(self, directory: Path, store: diskcache.Cache, redact: Redactor | None = None):
        self.directory = directory
        self._store = store
        self._redact = redact or Redactor()

    @classmethod
    def open(cls, directory: str | Path, redact: Redactor | None = None) -> AnswerCache:
        """``redact``: the secrets of the benchmark, removed from every value written."""
        directory = Path(directory)
        try:
            store = diskcache.Cache(str(directory), eviction_policy="none", size_limit=2**40)
            store.get("probe:")  # touches the database, so a damaged file fails here, not mid-run
        except (sqlite3.DatabaseError, OSError, ValueError) as e:
            raise CacheError(
                f"The cache at {directory} cannot be opened ({e}). "
                f"Run 'bench cache clear' to start a new one; docs/results.json keeps every committed answer."
            ) from None
        return cls(directory, store, redact)

    def close(self) -> None:
        self._store.close()

    # -- generic JSON records ------------------------------------------------------------------------

    def _get(self, key: str, kind: type[R]) -> R | None:
        raw = self._get_raw(key)
        if raw is None:
            return None
        try:
            # Python's parser accepts a lone surrogate escape an older version stored; the record replaces it.
            return kind.model_validate(json.loads(raw))
        except (ValueError, TypeError, ValidationError):
            return None  # an entry from another version or damaged: treated as a miss

    def _get_raw(self, key: str) -> str | None:
        try:
            return self._store.get(key)
        except (sqlite3.DatabaseError, OSError) as e:
            raise CacheError(f"The cache at {self.directory} is damaged ({e}). Run 'bench cache clear'.") from None

    def _json(self, record: BaseModel) -> str:
        # Records are clean when made; a copy made with model_copy(update=...) skips validation, so again here.
        data, _ = clean_tree(record.model_dump(mode="json"))
        return json.dumps(self._redact.tree(data), ensure_ascii=False)

    def _put(self, key: str, record: BaseModel) -> None:
        self._store.set(key, self._json(record))

    # -- answers and attempts --------------------------------------------------------------------------

    def answer(self, key: str) -> Answer | None:
        return self._get(f"answer:{key}", Answer)

    def put_answer(self, answer: Answer) -> None:
        with self._store.transact():
            self._put(f"answer:{answer.key}", answer)
            self._store.delete(f"failure:{answer.key}")

    def failure(self, key: str) -> Failure | None:
        return self._get(f"failure:{key}", Failure)

    def put_failure(self, failure: Failure) -> None:
        self._put(f"failure:{failure.key}", failure)

    # -- model probes, checks, judge -------------------------------------------------------------------

    def probe(self, model_id: str) -> ModelProbe | None:
        return self._get(f"probe:{model_id}", ModelProbe)

    def put_probe(self, probe: ModelProbe) -> None:
        self._put(f"probe:{probe.model_id}", probe)

    def checks(self, key: str) -> list[CheckResult] | None:
        raw = self._get_raw(f"checks:{key}")
        if raw is None:
            return None
        try:
            return [CheckResult.model_validate(c) for c in json.loads(raw)]
        except (ValueError, TypeError, ValidationError):
            return None

    def put_checks(self, key: str, results: list[CheckResult]) -> None:
        self._store.set(f"checks:{key}", "[" + ",".join(self._json(r) for r in results) + "]")

    def judge(self, key: str) -> JudgeResult | None:
        return self._get(f"judge:{key}", JudgeResult)

    def put_judge(self, key: str, result: JudgeResult) -> None:
        self._put(f"judge:{key}", result)

    # -- housekeeping --------------------------------------------------------------------------------

    def info(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key in self._store.iterkeys():
            kind = str(key).split(":", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    @contextmanager
    def run_lock(self) -> Iterator[None]:
        """Hold the cache for one run; a second run at the same time is refused, not interleaved."""
        path = self.directory / "run.lock"
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CacheBusy(
                    f"Another run holds the cache at {self.directory}. Wait for it to finish, "
                    f"or give this one its own --cache-dir."
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def clear(directory: str | Path) -> bool:
    """Delete a cache directory, damaged or not. Returns whether there was one."""
    directory = Path(directory)
    if not directory.exists():
        return False
    shutil.rmtree(directory)
    return True
