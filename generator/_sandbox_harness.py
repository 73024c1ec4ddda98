"""Runs inside the sandbox process: limit itself, guard itself, run test_answer's test_* functions, report.

Copied by generator/sandbox.py into the sandbox directory beside answer.py and test_answer.py and started
as ``python -I -B _harness.py CONFIG_JSON``. Standard library only. Each result goes out as one JSON line
on the file descriptor named in the config, which the parent opened; the answer's prints go to stdout and
stderr, which the parent keeps apart, so no print can be read as a result.

The audit hook below is a second line of defence for honest mistakes (an answer that opens a socket or
writes to /etc). It is NOT a security boundary: code running in this interpreter can get around it. The
boundaries are the process, its resource limits, its namespaces and its user; see generator/sandbox.py.
"""

import json
import os
import re
import resource
import signal
import sys

# Taken before any answer code runs, so the reporting path does not depend on modules the answer can patch.
_write = os.write
_dumps = json.dumps
_exit = os._exit
_getpid = os.getpid

MESSAGE_CHARS = 300
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
WRITABLE_DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr")

# Events refused outright: starting processes, reaching the network, loading native code, changing limits.
REFUSED = {
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile",
    "subprocess.Popen", "pty.spawn", "os.killpg",
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.sethostname",
    "resource.setrlimit", "resource.prlimit",
}
# Events that change the file system at the path(s) in these argument positions.
PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
    "os.truncate": (0,), "os.utime": (0,), "os.chflags": (0,), "os.lchflags": (0,), "os.lchmod": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "os.rename": (0, 1), "os.link": (1,), "os.symlink": (1,),
    "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (1,),
}
REFUSED_IMPORTS = {"_posixsubprocess"}  # only ever re-imported to undo the patch in _refuse_fork_exec
OTHER_PROCESS = re.compile(r"^/proc/(\d+)(/|$)")


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def report(event: dict) -> None:
    _write(REPORT_FD, (_dumps(event) + "\n").encode("utf-8", "replace"))


def set_limits(config: dict) -> None:
    mb = 1024 * 1024
    wanted = [
        (resource.RLIMIT_CPU, config["cpu_s"], config["cpu_s"] + 1),  # SIGXCPU at the soft limit, SIGKILL 1 s on
        (resource.RLIMIT_AS, config["memory_mb"] * mb, config["memory_mb"] * mb),
        (resource.RLIMIT_FSIZE, config["file_mb"] * mb, config["file_mb"] * mb),
        (resource.RLIMIT_NPROC, config["nproc"], config["nproc"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    for which, soft, hard in wanted:
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
        resource.setrlimit(which, (min(soft, hard), hard))


def on_cpu_limit(signum, frame) -> None:
    report({"error": f"CPU time limit of {CONFIG['cpu_s']} s exceeded"})
    _exit(3)


def _refuse_fork_exec() -> None:
    # subprocess starts children through _posixsubprocess.fork_exec, which raises no audit event of its own.
    import _posixsubprocess
    import subprocess

    def refused(*args, **kwargs):
        raise PermissionError("refused by the sandbox: subprocess")

    _posixsubprocess.fork_exec = refused
    subprocess._fork_exec = refused


def install_guard(root: str) -> None:
    realpath, fspath, fsdecode = os.path.realpath, os.fspath, os.fsdecode
    root = realpath(root)
    prefix = root + os.sep

    def inside(path) -> bool:
        if isinstance(path, int):  # an already-open file descriptor
            return True
        full = realpath(fsdecode(fspath(path)))
        return full == root or full.startswith(prefix) or full in WRITABLE_DEVICES

    def refuse(what: str):
        raise PermissionError(f"refused by the sandbox: {what}")

    def hook(event: str, args: tuple) -> None:
        if event in REFUSED or event.startswith("ctypes."):
            refuse(event)
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & WRITE_FLAGS
            )
            if writing and not inside(path):
                refuse(f"writing {fsdecode(fspath(path))} (outside the sandbox directory)")
            if isinstance(path, (str, bytes)) and "proc" in fsdecode(path):
                other = OTHER_PROCESS.match(realpath(fsdecode(path)))
                if other and int(other.group(1)) != _getpid():
                    refuse(f"reading {fsdecode(path)} (another process)")
        elif event in PATH_EVENTS:
            for i in PATH_EVENTS[event]:
                if i < len(args) and args[i] is not None and not inside(args[i]):
                    refuse(f"{event} on {fsdecode(fspath(args[i]))} (outside the sandbox directory)")
        elif event == "os.kill" and args and args[0] != _getpid():
            refuse("os.kill of another process")
        elif event == "import" and args and args[0] in REFUSED_IMPORTS and args[0] not in sys.modules:
            refuse(f"import {args[0]}")

    sys.addaudithook(hook)


def where(exc: BaseException, files: tuple[str, ...]) -> tuple[str, int, str] | None:
    """The innermost traceback frame in one of ``files``: (file name, line number, source line)."""
    import linecache
    import traceback

    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        name = os.path.basename(frame.filename)
        if name in files:
            line = frame.line or linecache.getline(frame.filename, frame.lineno or 0)
            found = (name, frame.lineno or 0, line.strip())
    return found


def describe(exc: BaseException) -> str:
    """One line for a page: the assertion's message, or the exception and where it was raised."""
    if isinstance(exc, AssertionError) and str(exc):
        return one_line(str(exc))
    if isinstance(exc, MemoryError):
        return f"MemoryError (memory limit {CONFIG['memory_mb']} MB)"
    place = where(exc, ("test_answer.py", "answer.py"))
    if isinstance(exc, AssertionError):
        if place:
            return one_line(f"assertion failed: {place[2]} ({place[0]} line {place[1]})")
        return "assertion failed"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if place and not isinstance(exc, SyntaxError):
        text += f" ({place[0]} line {place[1]})"
    return one_line(text)


def run_tests(module) -> None:
    import inspect

    tests = [
        (name, func)
        for name, func in vars(module).items()
        if name.startswith("test_") and inspect.isfunction(func) and func.__module__ == module.__name__
    ]
    if not tests:
        report({"error": "the test code defines no test_* functions"})
        return
    report({"tests": [name for name, _ in tests]})
    for name, func in tests:
        try:
            result = func()
            if inspect.iscoroutine(result):
                import asyncio

                asyncio.run(result)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from the answer fail the test too
            report({"outcome": name, "passed": False, "message": describe(exc)})
        else:
            report({"outcome": name, "passed": True, "message": ""})
    report({"done": True})


def main() -> None:
    set_limits(CONFIG)
    signal.signal(signal.SIGXCPU, on_cpu_limit)
    # Past the file size limit a write fails with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _refuse_fork_exec()
    install_guard(CONFIG["root"])
    sys.path.insert(0, CONFIG["root"])
    try:
        import importlib

        module = importlib.import_module("test_answer")
    except BaseException as exc:
        from_answer = where(exc, ("answer.py",)) or (
            isinstance(exc, SyntaxError) and os.path.basename(exc.filename or "") == "answer.py"
        )
        what = "the answer failed to import" if from_answer else "importing the tests failed"
        report({"error": f"{what}: {describe(exc)}"})
    else:
        run_tests(module)
    # Skip interpreter shutdown: threads or atexit handlers the answer left behind must not delay the end.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    _exit(0)


if __name__ == "__main__":
    CONFIG = json.loads(sys.argv[1])
    REPORT_FD = CONFIG["report_fd"]
    main()
