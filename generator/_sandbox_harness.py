"""Runs inside the sandbox: limit itself, then serve the answer's module to the trusted tests, or run a program.

Started by generator/sandbox.py as ``python -I -B -c SOURCE CONFIG_JSON`` under bubblewrap, with a request
pipe and a reply pipe; standard library only. Nothing this process says decides a test: in "serve" mode it
loads ``fixture`` (the check's setup code) and ``answer``, then answers calls from the trusted test process
(generator/_sandbox_tests.py) with plain data, one JSON line per request. Answer code runs in this
interpreter and may rewrite any of it; that only changes what the answer answers. In "program" mode it writes
the files, runs the program, kills what it left running and sends back its exit status, output and files.
"""

import base64
import json
import os
import resource
import signal
import sys

CONFIG = json.loads(sys.argv[1])
WORKDIR = os.getcwd()
os.environ.pop("PWD", None)  # set by bwrap --chdir; the environment is PATH, LANG, HOME and TMPDIR only
MODULES = ("answer", "fixture")


def set_limits() -> None:
    mb = 1024 * 1024
    wanted = [
        (resource.RLIMIT_CPU, CONFIG["cpu_s"], CONFIG["cpu_s"] + 1),  # SIGXCPU at the soft limit, SIGKILL 1 s on
        (resource.RLIMIT_AS, CONFIG["memory_mb"] * mb, CONFIG["memory_mb"] * mb),
        (resource.RLIMIT_FSIZE, CONFIG["file_mb"] * mb, CONFIG["file_mb"] * mb),
        (resource.RLIMIT_NPROC, CONFIG["nproc"], CONFIG["nproc"]),
        (resource.RLIMIT_NOFILE, CONFIG["nofile"], CONFIG["nofile"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    for which, soft, hard in wanted:
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
        resource.setrlimit(which, (min(soft, hard), hard))
    signal.signal(signal.SIGXCPU, lambda *_: os._exit(CONFIG["cpu_exit"]))
    # Past the file size limit a write fails with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class Pipe:
    """One JSON line per message, at most message_bytes."""

    def __init__(self, read_fd: int, write_fd: int):
        self.reader = os.fdopen(read_fd, "rb")
        self.write_fd = write_fd

    def receive(self):
        line = self.reader.readline(CONFIG["message_bytes"] + 1)
        if not line:
            os._exit(0)  # the tests are done
        return json.loads(line)

    def send(self, message: dict) -> None:
        data = json.dumps(message, ensure_ascii=True).encode() + b"\n"
        if len(data) > CONFIG["message_bytes"]:
            data = json.dumps({"raise": error_payload(
                ValueError(f"the reply is larger than {CONFIG['message_bytes']} bytes"))}).encode() + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(self.write_fd, view):]


# ------------------------------------------------------------------------------------------ plain data


def encode(value, depth: int = 0):
    """Plain data as tagged JSON: containers become {"l"|"t"|"s"|"f"|"d"|"b": ...}."""
    if depth > 100:
        raise ValueError("the value is nested too deeply")
    if value is None or isinstance(value, bool):
        return value if value is None else bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (bytes, bytearray)):
        return {"b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]}
    for kind, tag in ((list, "l"), (tuple, "t"), (frozenset, "f"), (set, "s")):
        if isinstance(value, kind):
            return {tag: [encode(item, depth + 1) for item in value]}
    raise TypeError(f"a {type(value).__name__} object is not plain data")


def decode(value, depth: int = 0):
    if depth > 100:
        raise ValueError("the value is nested too deeply")
    if not isinstance(value, dict):
        return value
    ((tag, inner),) = value.items()
    if tag == "b":
        return base64.b64decode(inner)
    if tag == "d":
        return {decode(k, depth + 1): decode(v, depth + 1) for k, v in inner}
    if tag == "r":  # a function of answer or fixture, passed by the tests by name
        return getattr(sys.modules[inner[0]], inner[1])
    items = [decode(item, depth + 1) for item in inner]
    return {"l": list, "t": tuple, "f": frozenset, "s": set}[tag](items)


def class_names(cls) -> list:
    return [[str(getattr(c, "__module__", "")), str(getattr(c, "__qualname__", "?"))] for c in cls.__mro__][:16]


def where(exc: BaseException):
    """The innermost traceback frame in answer.py or fixture.py, as "answer.py line N"."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        name = os.path.basename(tb.tb_frame.f_code.co_filename)
        if name in ("answer.py", "fixture.py"):
            found = f"{name} line {tb.tb_lineno}"
        tb = tb.tb_next
    return found


def error_payload(exc: BaseException, depth: int = 0) -> dict:
    try:
        message = str(exc)
    except BaseException:
        message = "(its message could not be shown)"
    try:
        args = encode(tuple(exc.args))
    except BaseException:
        args = None
    payload = {"class": class_names(type(exc)), "message": message[: CONFIG["message_chars"] * 4],
               "args": args, "where": where(exc)}
    if isinstance(exc, BaseExceptionGroup) and depth < 3:
        payload["exceptions"] = [error_payload(e, depth + 1) for e in exc.exceptions[:10]]
    return payload


# ------------------------------------------------------------------------------------------------ serve


def load(request: dict) -> dict:
    sys.path.insert(0, WORKDIR)
    for name, stage in (("fixture", "setup"), ("answer", "answer")):
        code = request.get("setup" if name == "fixture" else "answer") or ""
        with open(os.path.join(WORKDIR, f"{name}.py"), "w", encoding="utf-8", errors="replace") as f:
            f.write(code)
        try:
            __import__(name)
        except BaseException as exc:
            return {"raise": error_payload(exc), "stage": stage}
    return {"loaded": True}


def lookup(request: dict):
    module = sys.modules.get(request["module"]) if request["module"] in MODULES else None
    if module is None:
        raise ImportError(f"no module named {request['module']!r}")
    return getattr(module, request["name"])


def describe(obj) -> dict:
    import inspect

    if isinstance(obj, type) and issubclass(obj, BaseException):
        return {"exception": class_names(obj)}
    if inspect.ismodule(obj):
        raise TypeError(f"{obj.__name__} is a module; only functions and plain data cross to the tests")
    if callable(obj):
        is_async = inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(getattr(obj, "__call__", None))
        try:
            signature = str(inspect.signature(obj))
        except (TypeError, ValueError):
            signature = None
        doc = inspect.getdoc(obj)
        return {"function": {"async": bool(is_async), "doc": doc if isinstance(doc, str) else None,
                             "signature": signature}}
    return {"value": encode(obj)}


def names(request: dict) -> dict:
    """The module's public names that can cross (for ``from answer import *`` and ``dir``)."""
    import inspect

    module = sys.modules.get(request["module"]) if request["module"] in MODULES else None
    found = [] if module is None else [
        name for name, value in vars(module).items() if not name.startswith("_") and not inspect.ismodule(value)
    ]
    return {"value": encode(sorted(found))}


def call(request: dict) -> dict:
    import inspect

    function = lookup(request)
    result = function(*decode(request["args"]), **decode(request["kwargs"]))
    awaited = inspect.isawaitable(result)
    if awaited:
        import asyncio

        async def wait(awaitable):
            return await awaitable

        result = asyncio.run(wait(result))
    try:
        return {"value": encode(result), "awaited": awaited}
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{request['name']}() returned what cannot cross to the tests: {exc}") from None


def serve() -> None:
    pipe = Pipe(CONFIG["request_fd"], CONFIG["reply_fd"])
    handlers = {"load": load, "get": lambda r: describe(lookup(r)), "call": call, "names": names}
    while True:
        request = pipe.receive()
        try:
            reply = handlers[request["op"]](request)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from the answer cross as errors too
            reply = {"raise": error_payload(exc)}
        try:
            pipe.send(reply)
        except (TypeError, ValueError) as exc:
            pipe.send({"raise": error_payload(exc)})


# ---------------------------------------------------------------------------------------------- program


def run_program() -> None:
    import subprocess
    import threading

    pipe = Pipe(CONFIG["request_fd"], CONFIG["reply_fd"])
    spec = pipe.receive()
    for name, text in spec["files"].items():
        path = os.path.join(WORKDIR, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", errors="replace") as f:
            f.write(text)
        if name.startswith("bin/"):
            os.chmod(path, 0o755)
    _not_dumpable()
    env = {"PATH": f"{WORKDIR}/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": WORKDIR, "TMPDIR": WORKDIR,
           **spec["env"]}
    outputs = {"stdout": bytearray(), "stderr": bytearray()}
    result = {"exit_code": None, "timed_out": False, "error": None}
    try:
        proc = subprocess.Popen(spec["argv"], cwd=WORKDIR, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        result["error"] = f"the program could not start: {exc}"
    else:
        def drain(stream, kept: bytearray) -> None:
            while True:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not chunk:
                    break
                if len(kept) < spec["output_chars"] * 4:
                    kept.extend(chunk)

        readers = [threading.Thread(target=drain, args=(proc.stdout, outputs["stdout"]), daemon=True),
                   threading.Thread(target=drain, args=(proc.stderr, outputs["stderr"]), daemon=True)]
        for reader in readers:
            reader.start()
        import time

        # Under bwrap this process is PID 1 of the sandbox (--as-pid-1): the program cannot kill it, and
        # every orphan it leaves is reparented here, so all children are reaped here, the program's included.
        deadline = time.monotonic() + spec["wall_s"]
        while proc.returncode is None:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == proc.pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
            elif pid == 0:
                if time.monotonic() >= deadline:
                    result["timed_out"] = True
                    break
                time.sleep(0.005)
        result["exit_code"] = proc.returncode
        _kill_the_rest(proc.pid)
        _reap_all(time.monotonic() + 1)
        for reader in readers:
            reader.join(timeout=1)
    for name, kept in outputs.items():
        result[name] = bytes(kept).decode("utf-8", "replace")[: spec["output_chars"]]
    result["files"] = collect(spec)
    pipe.send(result)


def _reap_all(deadline: float) -> None:
    import time

    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.005)
        except ChildProcessError:
            return


def _not_dumpable() -> None:
    """Keep the program from reading this process's memory or descriptors through /proc or ptrace."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError, ImportError):
        pass


def _kill_the_rest(pgid: int) -> None:
    # In the sandbox's own PID namespace (this process is its PID 1), -1 is every process of the sandbox
    # but this one: background jobs that left the program's group included.
    if CONFIG.get("pid_namespace") and os.getpid() == 1:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def collect(spec: dict) -> dict:
    files: dict = {}
    budget = CONFIG["message_bytes"] // 2
    dirs = {d.rstrip("/") for d in spec["writable_dirs"]}
    # A directory inside another writable one (/run/lock in /run) is walked with its parent.
    inner = {d for d in dirs if any(d.startswith(other + "/") for other in dirs)}
    roots = [(WORKDIR, True)] + [(d, False) for d in sorted(dirs - inner)]
    for root, relative in roots:
        for directory, subdirs, names in os.walk(root):
            subdirs.sort()
            for name in sorted(names):
                path = os.path.join(directory, name)
                if len(files) >= spec["max_files"] or budget <= 0:
                    return files
                try:
                    if os.path.islink(path) or not os.path.isfile(path):
                        continue
                    with open(path, "rb") as f:
                        text = f.read(spec["file_chars"] * 4).decode("utf-8", "replace")[: spec["file_chars"]]
                except OSError:
                    continue
                files[os.path.relpath(path, root) if relative else path] = text
                budget -= len(json.dumps(text)) + len(path)
    return files


if __name__ == "__main__":
    set_limits()
    if CONFIG["mode"] == "serve":
        serve()
    else:
        run_program()
    os._exit(0)
