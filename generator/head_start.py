"""Before `bench run` imports anything heavy: the first model load of each machine, asked for at once.

A `bench run` spends about 0.25 s importing pydantic, httpx and the ollama client before it can call anything,
and a model load (a second for a small model, a minute for a 27B one) cannot begin before a request asks for
it. So the process starts here, with the stdlib and yaml only: it reads benchmark.yaml and asks each machine's
first Ollama model to load, with the load-time options its first calls carry, then imports the rest while the
server loads. The run itself probes and warms that model through the official client as always; Ollama's
scheduler makes that warm-up wait for the load under way instead of loading twice (server/sched.go), and the
load time recorded is that of the request sent first, the one that waited for the whole load.

It asks only when it is sure the run will ask the same, so that it never sends what the run would not:
- the arguments are a `bench run` the CLI's own parser accepts, without --only;
- no stored answer can serve the run (none in the cache, read straight from diskcache's SQLite file, none in
  docs/results.json), unless --refresh; and no other run holds the cache;
- the file is read as config reads it (duplicate keys refused, ${VAR} expanded, empty credentials dropped)
  and every key in it that bears on the load is one config knows (a typo such as `hots:` would leave the host
  at its default, so nothing is sent);
- the host is plain http (TLS trust and proxies are httpx's to decide: an https host, or any *_PROXY variable
  set, means no head start), the model has no `think`, and num_ctx is a plain integer.
Anything else, or a server that does not answer, means no head start, and the run goes exactly as it would
without this module. It prints nothing.

Departure from DESIGN.md's order (config validates, then run calls): a file that fails validation elsewhere
(a task, a check) has already asked its first models to load when the run stops with the validation message.
(Issue 12, item 8: a whole `bench run` process within 1.05 x the ideal schedule.)
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

from .arguments import build_parser
from .machines import group_by_machine, ollama_host
from .source import UniqueKeyLoader, expand_tree, without_empty_credentials

# Options that decide how Ollama loads a model: a change reloads it (api/types.go Runner options,
# server/sched.go needsReload). Only num_ctx can be set in benchmark.yaml; the others come with the server.
LOAD_OPTIONS = ("num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread")
DEFAULT_CACHE_DIR = ".cache/bench"  # cache.DEFAULT_DIR, which imports diskcache
RESULTS_FILE = "results.json"  # results.FILENAME, which imports pydantic
# The keys config accepts where they bear on a load (config's pydantic models; test_head_start compares).
TOP_KEYS = {"title", "description", "defaults", "models", "tasks", "judge", "report"}
DEFAULTS_KEYS = {"options", "timeout_s", "concurrency_per_host", "retries", "max_answer_chars", "warm_up"}
MODEL_KEYS = {"id", "label", "provider", "model", "host", "machine", "base_url", "api_key_env", "headers", "hardware",
              "options", "think", "timeout_s"}
OPTION_KEYS = {"temperature", "seed", "num_predict", "num_ctx", "top_k", "top_p", "min_p", "repeat_penalty", "stop"}
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


class Load:
    """One load asked for: where, what, with which options, and when it was sent and answered."""

    def __init__(self, host: str, model: str, options: dict, headers: dict[str, str], timeout_s: float):
        self.host, self.model, self.options, self.headers, self.timeout_s = host, model, options, headers, timeout_s
        self.key = _key(host, model, options)
        self.sent = threading.Event()  # set once the request is written, or once it failed
        self.sent_at: float | None = None  # time.perf_counter() when the request was written
        self.ms: float | None = None  # wall time to a 200 answer; None when it failed
        self.thread: threading.Thread | None = None


_planner: threading.Thread | None = None
_loads: dict[tuple[str, str, str], Load] = {}
_lock = threading.Lock()


def _key(host: str, model: str, options: dict) -> tuple[str, str, str]:
    return host, model, json.dumps(options, sort_keys=True)


def begin(argv: list[str], wait_s: float = 0.2) -> None:
    """Plan and send the head-start loads on daemon threads; returns once they are sent, or after ``wait_s``.

    Waiting lets them have the CPU: beside the imports (the GIL shares it) they left 0.1 s after the process
    started instead of 0.05 s. A slow name lookup or connection delays them, never the run beyond ``wait_s``."""
    global _planner
    deadline = time.monotonic() + wait_s
    _planner = threading.Thread(target=_plan_and_send, args=(argv,), name="head-start", daemon=True)
    _planner.start()
    _planner.join(timeout=wait_s)
    with _lock:
        loads = list(_loads.values())
    for load in loads:
        load.sent.wait(max(0.0, deadline - time.monotonic()))


def load_ms(host: str, model: str, options: dict, sent_at: float) -> float | None:
    """The load time to record for a warm-up sent at ``sent_at`` that has just been answered: the head start's,
    when it asked for this model with these options before that warm-up and was answered; else None. Each
    head start is given once (a model listed twice loads once), and this never waits more than 0.2 s."""
    if _planner is None or _planner.is_alive():
        return None
    with _lock:
        load = _loads.get(_key(host, model, options))
        if load is None or load.sent_at is None or load.sent_at > sent_at:
            return None
        del _loads[load.key]
    if load.thread is not None:
        load.thread.join(timeout=0.2)  # the server answered the warm-up, so this load is over or about to be
        if load.thread.is_alive():
            return None
    return load.ms


def _plan_and_send(argv: list[str]) -> None:
    try:
        loads = planned(argv)
    except Exception:  # a run never fails here: it starts as it would without a head start
        return
    for load in loads:
        load.thread = threading.Thread(target=_send, args=(load,), name=f"head-start {load.model}", daemon=True)
        with _lock:
            _loads[load.key] = load
        load.thread.start()


class _Quiet(argparse.ArgumentParser):
    """The CLI's parser, made silent: arguments it would refuse, or answer with help, mean no head start."""

    def error(self, message: str):
        raise ValueError(message)

    def exit(self, status: int = 0, message: str | None = None):
        raise ValueError(message or "exit")

    def print_help(self, file=None) -> None:
        raise ValueError("help")

    def print_usage(self, file=None) -> None:
        raise ValueError("usage")


def _arguments(argv: list[str]) -> argparse.Namespace | None:
    """A `bench run`'s arguments as the CLI reads them, or None when there is nothing to start."""
    args = build_parser(_Quiet).parse_args(argv)
    return args if args.command == "run" and not args.only else None


def planned(argv: list[str], environ: dict[str, str] | None = None) -> list[Load]:
    """The loads a `bench run` with these arguments starts with, or [] when it must not ask for any."""
    import yaml

    environ = dict(os.environ if environ is None else environ)
    args = _arguments(argv)
    if args is None or any(value for name, value in environ.items() if name.lower() in PROXY_VARIABLES):
        return []
    cache_dir = Path(args.cache_dir or environ.get("BENCH_CACHE_DIR") or DEFAULT_CACHE_DIR)
    if _held(cache_dir / "run.lock"):
        return []
    if not args.refresh and (_answers_cached(cache_dir) or _answers_committed(Path(args.docs_dir) / RESULTS_FILE)):
        return []
    data = yaml.load(Path(args.config).read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    missing: list = []
    data = expand_tree(data, environ, (), missing)
    if missing or not _known_keys(data):
        return []  # the run stops at the problem, with its message
    defaults = data.get("defaults") or {}
    if defaults.get("warm_up", True) is not True:
        return []
    first_task = data["tasks"][0]
    models = [_Placed(m) for m in data["models"]]
    loads = []
    for on_machine in group_by_machine(models).values():
        first = on_machine[0]  # the run loads a machine's models one after the other, this one first
        load = first.load(defaults, first_task)
        if load is not None:
            loads.append(load)
    return loads


def _known_keys(data: dict) -> bool:
    """Whether every key that bears on a load is one config accepts."""
    def mapping(node, known: set[str]) -> bool:
        return node is None or (isinstance(node, dict) and set(node) <= known)

    defaults = data.get("defaults")
    return (mapping(data, TOP_KEYS) and mapping(defaults, DEFAULTS_KEYS)
            and mapping((defaults or {}).get("options"), OPTION_KEYS)
            and isinstance(data.get("models"), list) and isinstance(data.get("tasks"), list) and data["tasks"]
            and all(isinstance(m, dict) and mapping(m, MODEL_KEYS) and mapping(m.get("options"), OPTION_KEYS)
                    for m in data["models"])
            and isinstance(data["tasks"][0], dict) and mapping(data["tasks"][0].get("options"), OPTION_KEYS))


class _Placed:
    """A model entry of benchmark.yaml as read here, for grouping by machine (see machines.group_by_machine)."""

    def __init__(self, entry: dict):
        self.entry = entry
        self.provider = entry.get("provider", "ollama")
        raw = entry.get("base_url") if self.provider == "openai" else entry.get("host", "http://localhost:11434")
        if not isinstance(raw, str):
            raise ValueError("a host this module does not read")
        self.host = raw.rstrip("/") if self.provider == "openai" else ollama_host(raw)
        machine = entry.get("machine")
        self.machine = machine if isinstance(machine, str) and machine else None

    def load(self, defaults: dict, first_task: dict) -> Load | None:
        entry = self.entry
        model, headers = entry.get("model"), entry.get("headers") or {}
        if (self.provider != "ollama" or entry.get("think") or not isinstance(model, str) or not model
                or not self.host.startswith("http://") or not isinstance(headers, dict)
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
            return None
        options: dict = {}
        for layer in (defaults.get("options"), entry.get("options"), first_task.get("options")):
            options.update({k: v for k, v in (layer or {}).items() if v is not None})
        load_options = {k: v for k, v in options.items() if k in LOAD_OPTIONS}
        if not all(type(v) is int and v > 0 for v in load_options.values()):
            return None
        timeout = entry.get("timeout_s") or defaults.get("timeout_s") or 600
        if type(timeout) not in (int, float) or not 0 < timeout <= 86400:
            return None
        return Load(self.host, model, load_options, without_empty_credentials(headers), float(timeout))


def _held(lock: Path) -> bool:
    """Whether another `bench run` holds the cache's run lock (cache.AnswerCache.run_lock): it may be using a
    model on this server, and this run stops at once anyway."""
    import fcntl

    try:
        handle = os.open(lock, os.O_RDONLY)
    except OSError:
        return False  # no lock file: no run has held this cache
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(handle)


def _answers_cached(cache_dir: Path) -> bool:
    """Whether the answer cache holds any answer (diskcache keeps str keys as they are, in table Cache)."""
    database = cache_dir / "cache.db"
    if not database.exists():
        return False
    import sqlite3

    try:
        with sqlite3.connect(database.resolve().as_uri() + "?mode=ro", uri=True, timeout=1) as db:
            found = db.execute("SELECT 1 FROM Cache WHERE key >= 'answer:' AND key < 'answer;' LIMIT 1").fetchone()
            return found is not None
    except sqlite3.Error:
        return True  # unreadable here: the run will say why; no head start meanwhile


def _answers_committed(path: Path) -> bool:
    """Whether docs/results.json holds any answer (the run seeds the cache from them instead of calling)."""
    if not path.exists():
        return False
    try:
        document = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        return any(cell.get("answer") is not None for task in document["tasks"] for cell in task["cells"])
    except Exception:
        return True


def _send(load: Load) -> None:
    """POST /api/generate with an empty prompt: Ollama loads the model and answers done_reason "load"."""
    try:
        import http.client
        from urllib.parse import urlsplit

        url = urlsplit(load.host)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=load.timeout_s)
        body = {"model": load.model, "prompt": "", "stream": False, **({"options": load.options} if load.options else {})}
        started = time.perf_counter()
        conn.request("POST", f"{url.path}/api/generate", body=json.dumps(body),
                     headers={"Content-Type": "application/json", "Accept": "application/json", **load.headers})
        load.sent_at = time.perf_counter()  # written: the server has it (a connection that failed sent nothing)
        load.sent.set()
        response = conn.getresponse()
        response.read(65536)
        if response.status == 200:
            load.ms = round((time.perf_counter() - started) * 1000, 3)
        conn.close()
    except Exception:
        pass  # the run's own probe meets the same problem and reports it
    finally:
        load.sent.set()
