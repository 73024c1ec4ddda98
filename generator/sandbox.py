"""Run untrusted code from a model's answer under bubblewrap, and grade it in a process it cannot touch.

Two entry points: ``run_python_tests`` (an answer's Python module against a check's trusted test_* functions)
and ``run_program`` (a shell script with stub commands). Both run the answer's code in the same sandbox.

The sandbox (``_bwrap_command``), built from bubblewrap, a kept tool, not by hand:
- ``--unshare-all --unshare-user``: own user, PID, network (a loopback of its own only), IPC, UTS and cgroup
  namespaces; ``--disable-userns``: no further user namespace; ``--cap-drop ALL``; ``--new-session``;
  ``--die-with-parent``; uid and gid 65534 inside. bwrap sets no_new_privs.
- The file system is a fresh root holding only: /usr and the /bin, /lib* links (read-only), /etc/ld.so.cache,
  for a program given a local time zone an /etc/localtime link to its tzdata file under /usr, the interpreter's prefix (``sys.base_prefix``, read-only; never /root, the project, the venv or the cache),
  a new /proc and a minimal /dev. The root and /dev are remounted read-only. The only writable places are
  size-limited tmpfs mounts: the work directory ``/work`` (cwd, HOME and TMPDIR), ``/tmp`` (scripts keep
  lock files there) and, for ``run_program``, each of ``writable_dirs``. Nothing written there outlives
  the run.
- Mounts cannot be remounted: no capabilities, and a nested user namespace (the only way to regain them)
  is refused.
- Limits set inside before answer code runs: RLIMIT_CPU, RLIMIT_AS (memory_mb), RLIMIT_FSIZE (file_mb),
  RLIMIT_NOFILE, RLIMIT_NPROC (nproc) and no core files; a wall clock kills everything past ``wall_s``.
  For ``run_python_tests`` that clock counts the run's own time: time its processes spent runnable but
  waiting for a CPU (a loaded machine) is added back, up to STARVED_GRACE × ``wall_s``; a run cut off
  there is ``starved`` (could not run), never a timeout of the answer.
- A seccomp filter refuses ptrace, keyrings, perf_event_open, userfaultfd and process_vm_*.
- Aggregates: disk is the tmpfs sizes (``4 × file_mb`` each, so ``8 × file_mb`` plus as much per writable dir). For Python answers the seccomp filter also
  refuses fork, vfork and clone without CLONE_THREAD: the answer is one process whose threads
  share one RLIMIT_AS, so total memory is ``memory_mb`` and tasks are at most ``nproc``. Shell programs
  may fork: up to ``nproc`` processes of at most SHELL_MEMORY_MB each. For both, the parent sums the
  resident memory of all the sandbox's processes, and counts the files in its tmpfs mounts (each costs
  kernel memory, and tmpfs has no file limit bwrap can set), every WATCH_S, and kills the sandbox above
  ``memory_mb`` or MAX_FILES (a cgroup would bound memory exactly; unprivileged users have none to use).
- RLIMIT_NPROC binds only for a user other than root (the kernel exempts uid 0). When bench itself runs as
  root, bwrap is started as nobody, with the interpreter's prefix bound where nobody can reach it in a
  private mount namespace (``unshare``, ``mount``, ``setpriv`` from util-linux).

Where bubblewrap is missing or does not work, ``SandboxUnavailable`` is raised unless the user opted in
(``BENCH_ALLOW_UNSANDBOXED=1`` or ``--allow-unsandboxed``): then the same harness runs in a plain child
process with the same rlimits and no namespaces. ``isolation().summary`` says which, and every result
carries it.

Results the answer cannot forge (``run_python_tests``): the answer's module, and the check's ``setup_code``
(importable as ``fixture``), are loaded in the sandboxed process (generator/_sandbox_harness.py), which
serves calls over a pipe. The test code runs in another process, outside the sandbox (it is trusted:
generator/_sandbox_tests.py), where ``import answer`` and ``import fixture`` give proxies. Only plain data
crosses: None, bool, int, float, str, bytes, list, tuple, dict, set, frozenset, in a tagged JSON form,
decoded into fresh builtin objects, at most MESSAGE_BYTES a message; exceptions come back as the nearest
builtin exception type (or a local stand-in class named like the answer's) with their message. Every
outcome is decided by the trusted process; the answer process's exit status, prints and files mean
nothing; timing is measured on the trusted side. An ``__eq__`` that always returns True, a patched
harness, a forged report line or a rewritten test function cannot reach the process that decides.

Forgeries that remain possible, by design:
- The answer sees every argument it is called with, so it can special-case the inputs a test uses
  (hidden tests or randomised inputs are the remedy, not the sandbox).
- The fixture lives beside the answer, in the same interpreter: the answer can read its source and state
  and patch it (for example the counters of a fake aiohttp, or a fixture function that runs the answer
  and reports how it went). Observations a fixture makes are evidence only as far as the answer left the
  fixture alone: tests should call the answer themselves and measure what they can on their side (results,
  exceptions, time), using the fixture only to set up fakes. benchmark.yaml's async-bug does so
  (``asyncio.run(answer.fetch_all(urls))`` in the tests; the status read from the message that crosses); what
  it still takes from its fake aiohttp are counters (sessions created, sessions closed, most requests in
  flight), which an answer can forge by patching the fixture's ``stats`` or ``STATE``.
- Module-level values are read on access: the answer decides what they are.
- A test that accepts any exception (``except Exception: pass``) passes for an answer that always raises;
  the proxies cannot help a test that asks too little.
- ``run_program``: the script's exit status, output and files are produced inside its own sandbox, so the
  script decides them; stubs that record calls share that sandbox. They are evidence of behaviour, not a
  protected verdict.
What the sandbox does not protect:
- Files readable under /usr and the interpreter's prefix (read-only is not invisible); a message the
  answer raises is shown on the page.
- Its own output: stdout and stderr go to an unlinked capture file of the parent, at most ``file_mb``.
- Kernel and bubblewrap bugs; a host where unprivileged user namespaces are disabled (then bubblewrap
  fails and the user is told, see ``SandboxUnavailable``); the opt-out, which is no sandbox at all.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

from .errors import BenchError
from .safety import clean_text

HARNESS = Path(__file__).with_name("_sandbox_harness.py")
TESTS = Path(__file__).with_name("_sandbox_tests.py")
MESSAGE_CHARS = 300
OUTPUT_CHARS = 4000
REPORT_BYTES = 1_000_000
MESSAGE_BYTES = 4_000_000  # largest message either side accepts
FILE_CHARS = 20_000  # text kept of each file a program left behind
PROGRAM_FILES = 200  # files kept of a program's directories
SHELL_MEMORY_MB = 256  # address space of each process of a shell program
WATCH_S = 0.05  # how often the memory and files of the sandbox's processes are summed
MAX_FILES = 10_000  # files and directories in the sandbox's tmpfs mounts together
NOFILE = 256
WORKDIR = "/work"
NOBODY = 65534
OPT_IN_ENV = "BENCH_ALLOW_UNSANDBOXED"
CPU_EXIT = 75  # the harness's exit status when it hits the CPU limit
STARVED_GRACE = 3  # a run whose processes waited for a CPU may last up to this many times wall_s


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox run."""

    wall_s: float = 20  # wall clock for the whole run; then every process of the run is killed
    cpu_s: int = 20  # CPU seconds
    memory_mb: int = 1024  # address space
    file_mb: int = 16  # largest file the child may write, its captured output included; tmpfs = 4 × this
    nproc: int = 64  # processes and threads


class SandboxUnavailable(BenchError):
    """Answer code cannot be run safely here and the user did not opt in to running it anyway."""


@dataclass(frozen=True)
class TestOutcome:
    """One test_* function's result."""

    __test__ = False  # not a pytest test class

    name: str
    passed: bool
    message: str  # assertion or exception text, one line, at most MESSAGE_CHARS


@dataclass(frozen=True)
class SandboxReport:
    """Every test's outcome, in definition order, and what went wrong with the run as a whole."""

    outcomes: tuple[TestOutcome, ...]
    error: str | None  # timeout, limit, crash or import failure, in one line; None when the run finished
    isolation: str = ""  # Isolation.summary of the run
    # The run was cut off because the machine gave its processes too little CPU, not because the answer
    # was slow: the outcomes say nothing about the answer (a check reports it as could not run).
    starved: bool = False


@dataclass(frozen=True)
class ProgramRun:
    """What a program did in the sandbox."""

    exit_code: int | None  # None when it was killed at the wall clock or never started; -N: killed by signal N
    stdout: str
    stderr: str
    files: dict[str, str] = field(default_factory=dict)  # relative (work dir) or absolute (writable_dirs) path
    timed_out: bool = False
    error: str | None = None
    isolation: str = ""


@dataclass(frozen=True)
class Isolation:
    """How answer code is isolated on this machine."""

    mode: Literal["bubblewrap", "unsandboxed", "unavailable"]
    # unsandboxed: no bubblewrap, and the user allowed running answer code without it; unavailable: refused
    bwrap: str | None  # path of bwrap
    as_nobody: bool  # bench runs as root: bwrap is started as nobody so that RLIMIT_NPROC binds
    seccomp: bool  # the seccomp filters are available (x86-64, arm64)
    problem: str | None = None  # why bubblewrap cannot be used, when it cannot

    @property
    def summary(self) -> str:
        if self.mode == "unavailable":
            return f"no sandbox ({self.problem}): answer code is not run"
        if self.mode == "unsandboxed":
            return (
                f"NOT sandboxed ({self.problem}; allowed by {OPT_IN_ENV}): a plain child process with CPU, memory, "
                "file size and process limits; it can read the user's files and reach the network"
            )
        parts = [
            "bubblewrap: own user, PID, network, IPC and UTS namespaces; no capabilities; uid 65534",
            "read-only interpreter and /usr; size-limited tmpfs mounts the only writable places",
            "CPU, memory, file, descriptor and process limits",
        ]
        if self.seccomp:
            parts.append("seccomp: no ptrace, keyrings or perf; Python answers cannot start processes")
        parts.append("tests graded in a separate process; only plain data crosses")
        return "; ".join(parts)

    def required(self) -> Isolation:
        """Itself, when answer code may run; otherwise SandboxUnavailable says what to do."""
        if self.mode == "unavailable":
            raise SandboxUnavailable(
                f"cannot run answer code safely: {self.problem}. Install bubblewrap (Debian/Ubuntu: apt-get install "
                f"bubblewrap), or run it unsandboxed at your own risk with --allow-unsandboxed ({OPT_IN_ENV}=1)."
            )
        return self


def isolation() -> Isolation:
    """The isolation answer code gets here (its ``summary`` is one line for pages); never raises."""
    bwrap = shutil.which("bwrap")
    problem = _probe(bwrap, os.geteuid() == 0) if bwrap else "bubblewrap (bwrap) is not installed"
    if problem is None:
        return Isolation("bubblewrap", bwrap, os.geteuid() == 0, _seccomp_filter() is not None)
    mode = "unsandboxed" if os.environ.get(OPT_IN_ENV) == "1" else "unavailable"
    return Isolation(mode, None, False, False, problem)


# ------------------------------------------------------------------------------------------ python tests


def run_python_tests(answer_code: str, test_code: str, limits: Limits = Limits(), setup_code: str = "") -> SandboxReport:
    """Run ``test_code``'s test_* functions, in a trusted process, against ``answer_code`` in the sandbox.

    In the test code ``import answer`` and ``import fixture`` (``setup_code``, run beside the answer before
    it is imported, e.g. a fake library put in sys.modules) give proxies. What works there:
    - calling functions with plain data and comparing the plain data they return;
    - async functions: ``asyncio.run(answer.fetch_all(urls))`` (the coroutine runs with asyncio.run in the
      sandbox; awaits of answer functions run one after another);
    - module-level plain data, read at each access (``fixture.STATE``; ``from fixture import STATE`` is a copy);
    - exceptions: ``except ValueError``, ``except fixture.ClientError`` (a stand-in class of that name, whose
      ``__mro__`` names the answer's classes); an exception group's ``exceptions`` cross too; the answer's
      own ``str(exc)`` and class name are ``exc._answer_message`` and ``exc._answer_type`` (``str(exc)`` of a
      stand-in is rebuilt from its args);
    - a function of answer or fixture as an argument: ``answer.retry(fixture.flaky, 3)``;
    - ``answer.f.__doc__``, ``answer.f.signature`` (text), ``inspect.iscoroutinefunction(answer.f)``.
    What does not: instances of the answer's classes, generators, callbacks defined in the tests,
    ``isinstance`` against the answer's classes, attribute chains (``answer.Cls.method``), setting attributes
    of answer or fixture from the tests.
    """
    iso = isolation().required()
    private = Path(tempfile.mkdtemp(prefix="bench-tests-"))
    pipes: list[int] = []
    try:
        (private / "test_answer.py").write_text(test_code, encoding="utf-8", errors="replace")
        (private / "load.json").write_text(
            json.dumps({"answer": answer_code, "setup": setup_code}, ensure_ascii=True), encoding="utf-8"
        )
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        pipes = [request_r, request_w, reply_r, reply_w]
        with tempfile.TemporaryFile() as report, tempfile.TemporaryFile() as answer_output, \
                tempfile.TemporaryFile() as test_output:
            config = _harness_config(limits, "serve", request_r, reply_w)
            answer = _start_sandboxed(iso, config, (request_r, reply_w), answer_output, processes=False)
            trusted = None
            try:
                tests_config = {
                    "request_fd": request_w, "reply_fd": reply_r, "report_fd": report.fileno(),
                    "directory": str(private), "memory_mb": limits.memory_mb, "message_bytes": MESSAGE_BYTES,
                }
                trusted = subprocess.Popen(
                    [sys.executable, "-I", "-B", str(TESTS), json.dumps(tests_config)],
                    cwd=private, env=_environment(str(private)), stdin=subprocess.DEVNULL,
                    stdout=test_output, stderr=test_output, pass_fds=(request_w, reply_r, report.fileno()),
                    start_new_session=True,
                )
                for fd in pipes:
                    os.close(fd)
                pipes = []
                start = time.monotonic()
                excess: list[str] = []
                queue = _RunQueue((trusted.pid, answer.pid))

                def watch() -> bool:
                    queue.sample()
                    found = _excess(answer, limits, (WORKDIR, "/tmp"))
                    if found:
                        excess.append(found)
                        _kill(answer)  # the tests see the answer's process end
                    return False

                timed_out, starved = _wait_own_time(trusted, start, limits.wall_s, queue, watch)
                deadline = start + limits.wall_s * STARVED_GRACE
                report.seek(0)
                events = _events(report.read(REPORT_BYTES))
                # When the tests saw the answer's process go, it may still be ending: its status tells why.
                if not timed_out and any(event.get("answer_ended") for event in events):
                    _wait(answer, min(deadline, time.monotonic() + 1.0))
            finally:
                if trusted is not None:
                    _kill(trusted)
                _kill(answer)
            return _assemble(
                events, answer.returncode, trusted.returncode, timed_out, limits,
                _last_line(answer_output), _last_line(test_output), iso.summary, excess[0] if excess else None,
                starved,
            )
    finally:
        for fd in pipes:
            os.close(fd)
        shutil.rmtree(private, ignore_errors=True)


# --------------------------------------------------------------------------------------------- programs


def local_zone_file(zone: str) -> str | None:
    """The tzdata file of ``zone`` (e.g. Asia/Kathmandu) on this machine, or None when tzdata lacks it."""
    if not re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", zone):
        return None
    path = f"/usr/share/zoneinfo/{zone}"
    return path if os.path.isfile(path) else None


def run_program(
    files: dict[str, str],
    argv: list[str],
    limits: Limits = Limits(),
    writable_dirs: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    local_zone: str | None = None,
) -> ProgramRun:
    """Run ``argv`` in the sandbox's work directory, holding ``files``; ``bin/`` is first on PATH.

    ``local_zone``: a zone whose tzdata file (``local_zone_file``) becomes /etc/localtime, the local time of a
    program that has no TZ, as under cron (bubblewrap only; /usr, where tzdata lives, is already visible)."""
    iso = isolation().required()
    zone_file = local_zone_file(local_zone) if local_zone else None
    if local_zone and (zone_file is None or iso.mode != "bubblewrap"):
        return ProgramRun(None, "", "", {}, False, f"the local time zone {local_zone} needs tzdata "
                          f"(/usr/share/zoneinfo) and a bubblewrap sandbox", iso.summary)
    for directory in writable_dirs:
        if not directory.startswith("/") or ".." in directory.split("/") or directory.rstrip("/") in ("", WORKDIR):
            raise ValueError(f"writable_dirs must be absolute paths other than / and {WORKDIR}: {directory!r}")
    for name in files:
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"files must be relative paths inside the work directory: {name!r}")
    if writable_dirs and iso.mode != "bubblewrap":
        # Unsandboxed, /var/log would be the host's own: refuse rather than let a script write there.
        return ProgramRun(None, "", "", {}, False, "this check writes to " + ", ".join(writable_dirs) +
                          ", which only a bubblewrap sandbox can provide; install bubblewrap", iso.summary)
    spec = {"files": files, "argv": list(argv), "env": dict(env or {}), "writable_dirs": list(writable_dirs),
            "wall_s": max(0.1, limits.wall_s - 0.5), "file_chars": FILE_CHARS, "max_files": PROGRAM_FILES,
            "output_chars": OUTPUT_CHARS * 4}
    request_r, request_w = os.pipe()
    reply_r, reply_w = os.pipe()
    with tempfile.TemporaryFile() as output:
        try:
            config = _harness_config(limits, "program", request_r, reply_w)
            proc = _start_sandboxed(iso, config, (request_r, reply_w), output, processes=True,
                                    writable_dirs=writable_dirs, zone_file=zone_file)
        except BaseException:
            os.close(request_w)
            os.close(reply_r)
            raise
        finally:
            os.close(request_r)
            os.close(reply_w)
        try:
            with os.fdopen(request_w, "wb") as request:
                try:
                    request.write(json.dumps(spec).encode() + b"\n")
                except BrokenPipeError:
                    pass
            deadline = time.monotonic() + limits.wall_s
            mounts = (WORKDIR, "/tmp", *(d.rstrip("/") for d in writable_dirs if d.rstrip("/") != "/tmp"))
            with os.fdopen(reply_r, "rb") as reply:
                data, excess = _read_until(reply, deadline, MESSAGE_BYTES, proc, limits, mounts)
            timed_out = not excess and not _wait(proc, deadline)
        finally:
            _kill(proc)
        last = _last_line(output)
    if excess:  # the program's doing, like the kernel's OOM killer: a killed program, not a broken sandbox
        return ProgramRun(-signal.SIGKILL, "", f"killed: {excess}", {}, False, None, iso.summary)
    try:
        result = json.loads(data) if data else None
    except ValueError:
        result = None
    if not isinstance(result, dict):
        why = f"timed out after {limits.wall_s:g} s" if timed_out else f"its harness {_ended(proc.returncode, limits)}"
        return ProgramRun(None, "", "", {}, timed_out, _one_line(f"the program's sandbox gave no result ({why})"
                                                                   + (f"; its last output: {last}" if last else "")),
                          iso.summary)
    return ProgramRun(
        exit_code=result.get("exit_code") if isinstance(result.get("exit_code"), int) else None,
        stdout=_text(result.get("stdout", "")),
        stderr=_text(result.get("stderr", "")),
        files={_text(k): _text(v) for k, v in dict(result.get("files") or {}).items()},
        timed_out=bool(result.get("timed_out")),
        error=_one_line(result["error"]) if isinstance(result.get("error"), str) else None,
        isolation=iso.summary,
    )


# ------------------------------------------------------------------------------------------------ bwrap


def _harness_config(limits: Limits, mode: str, request_fd: int, reply_fd: int) -> dict:
    python = mode == "serve"
    return {
        "mode": mode,
        "request_fd": request_fd,
        "reply_fd": reply_fd,
        "cpu_s": max(1, int(limits.cpu_s)),
        "memory_mb": limits.memory_mb if python else min(limits.memory_mb, SHELL_MEMORY_MB),
        "file_mb": limits.file_mb,
        "nproc": limits.nproc,
        "nofile": NOFILE,
        "cpu_exit": CPU_EXIT,
        "message_bytes": MESSAGE_BYTES,
        "message_chars": MESSAGE_CHARS,
    }


def _start_sandboxed(iso: Isolation, config: dict, fds: tuple[int, ...], output, *, processes: bool,
                     writable_dirs: tuple[str, ...] = (), zone_file: str | None = None) -> subprocess.Popen:
    python = _interpreter()
    config = {**config, "pid_namespace": iso.mode == "bubblewrap"}
    argv = [python, "-I", "-B", "-c", _harness_source(), json.dumps(config)]
    tmpfs_bytes = 4 * config["file_mb"] * 1024 * 1024
    pass_fds = list(fds)
    filter_fd = None
    if iso.mode == "unsandboxed":
        workdir = tempfile.mkdtemp(prefix="bench-unsandboxed-")
        command = argv
        cwd, env = workdir, _environment(workdir)
    else:
        program = _seccomp_filter(processes)
        if program is not None:
            filter_fd = os.memfd_create("bench-seccomp", 0)
            os.write(filter_fd, program)
            os.lseek(filter_fd, 0, os.SEEK_SET)
            pass_fds.append(filter_fd)
        info_r, info_w = os.pipe()
        pass_fds.append(info_w)
        command = _bwrap_command(iso, argv, tmpfs_bytes, writable_dirs, filter_fd, info_w, as_pid_1=processes,
                                 zone_file=zone_file)
        cwd, env = "/", {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    try:
        proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
            pass_fds=pass_fds, start_new_session=True,
        )
    except BaseException:
        if iso.mode == "bubblewrap":
            os.close(info_r)
        raise
    finally:
        if filter_fd is not None:
            os.close(filter_fd)
        if iso.mode == "bubblewrap":
            os.close(info_w)
    proc.bench_workdir = cwd if iso.mode == "unsandboxed" else None
    proc.bench_info_fd = info_r if iso.mode == "bubblewrap" else None
    return proc


def _bwrap_command(iso: Isolation, argv: list[str], tmpfs_bytes: int, writable_dirs: tuple[str, ...],
                   filter_fd: int | None, info_fd: int | None = None, as_pid_1: bool = False,
                   zone_file: str | None = None) -> list[str]:
    prefix = os.path.realpath(sys.base_prefix)
    visible = _visible_prefix(prefix) if iso.as_nobody else prefix
    command = [
        iso.bwrap or "bwrap",
        "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
        "--cap-drop", "ALL", "--uid", str(NOBODY), "--gid", str(NOBODY),
        "--ro-bind", "/usr", "/usr",
    ]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            command += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            command += ["--ro-bind", top, top]
    command += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    if zone_file is not None:  # a tzdata file under the read-only /usr
        command += ["--symlink", zone_file, "/etc/localtime"]
    if prefix != "/usr" and not prefix.startswith("/usr/"):
        command += ["--ro-bind", visible, prefix]
    command += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmpfs_bytes), "--tmpfs", WORKDIR,
                "--size", str(tmpfs_bytes), "--tmpfs", "/tmp"]
    # Parents first (fewest components, then by name): a tmpfs mounted on /run after /run/lock would hide it.
    # /tmp is one already.
    for directory in sorted({d.rstrip("/") for d in writable_dirs} - {"/tmp"}, key=lambda d: (d.count("/"), d)):
        command += ["--size", str(tmpfs_bytes), "--tmpfs", directory]
    # Last: nothing else on the new root or in /dev may be written (their tmpfs has no size limit).
    command += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", WORKDIR, "--clearenv"]
    for name, value in _environment(WORKDIR).items():
        command += ["--setenv", name, value]
    if filter_fd is not None:
        command += ["--seccomp", str(filter_fd)]
    if info_fd is not None:
        command += ["--info-fd", str(info_fd)]
    if as_pid_1:  # the harness of a program: PID 1 cannot be killed from inside its namespace
        command += ["--as-pid-1"]
    command += ["--", *argv]
    if not iso.as_nobody:
        return command
    # Root is exempt from RLIMIT_NPROC: start bwrap as nobody, with the interpreter's prefix (often under
    # /root, which nobody cannot enter) bound on a directory nobody can reach, in a private mount namespace.
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    if visible == prefix:
        return [*as_nobody, *command]
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "/bin/sh", "-c", 'mount --bind -o ro "$1" "$2" && shift 2 && exec "$@"', "sh", prefix, visible,
        *as_nobody, *command,
    ]


@functools.lru_cache(maxsize=None)
def _visible_prefix(prefix: str) -> str:
    """Where nobody can reach the interpreter's prefix: the prefix itself, or an empty root-owned directory
    it is bound on in a private mount namespace (so it stays empty for everyone else)."""
    if _reachable_by_nobody(prefix):
        return prefix
    directory = "/run/bench-python"
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        info = os.lstat(directory)
        if not (os.path.isdir(directory) and not os.path.islink(directory) and info.st_uid == 0):
            raise OSError(f"{directory} is not a directory of root's")
        os.chmod(directory, 0o755)
        return directory
    except OSError:
        return tempfile.mkdtemp(prefix="bench-python-")


def _reachable_by_nobody(path: str) -> bool:
    parts = Path(path).parts
    return all(os.stat(os.path.join(*parts[:i])).st_mode & 0o001 for i in range(1, len(parts) + 1))


@functools.lru_cache(maxsize=None)
def _interpreter() -> str:
    """The base interpreter (a venv's python is a link to it; the venv itself is never bound)."""
    real = os.path.realpath(sys.executable)
    if real.startswith(os.path.realpath(sys.base_prefix) + os.sep):
        return real
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return os.path.join(sys.base_prefix, "bin", version)


@functools.lru_cache(maxsize=None)
def _harness_source() -> str:
    return HARNESS.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def _probe(bwrap: str, as_root: bool) -> str | None:
    """None when bwrap can start this interpreter here; otherwise why not."""
    if as_root and not all(shutil.which(tool) for tool in ("unshare", "mount", "setpriv")):
        return "bench runs as root and unshare, mount or setpriv (util-linux) is missing"
    iso = Isolation("bubblewrap", bwrap, as_root, False)
    command = _bwrap_command(iso, [_interpreter(), "-I", "-c", "open('probe', 'w').close()"], 1 << 20, (), None)
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=20, cwd="/")
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap failed to start: {exc}"
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bubblewrap does not work here ({why[-1] if why else f'exit status {done.returncode}'})"
    return None


SYSCALLS = {  # audit arch, then the numbers the filters name
    "x86_64": (0xC000003E, {"clone": 56, "fork": 57, "vfork": 58, "clone3": 435, "ptrace": 101, "keyctl": 250,
                            "add_key": 248, "request_key": 249, "perf_event_open": 298, "userfaultfd": 323,
                            "process_vm_readv": 310, "process_vm_writev": 311}),
    "aarch64": (0xC00000B7, {"clone": 220, "clone3": 435, "ptrace": 117, "keyctl": 219, "add_key": 217,
                             "request_key": 218, "perf_event_open": 241, "userfaultfd": 282,
                             "process_vm_readv": 270, "process_vm_writev": 271}),
}
REFUSED_SYSCALLS = ("ptrace", "keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd",
                    "process_vm_readv", "process_vm_writev")


@functools.lru_cache(maxsize=None)
def _seccomp_filter(processes: bool = False) -> bytes | None:
    """A classic BPF seccomp program refusing (EPERM) ptrace, keyrings, perf, userfaultfd and other
    processes' memory; unless ``processes``, also every new process (fork, vfork, clone without
    CLONE_THREAD; clone3 answers ENOSYS so that glibc falls back to clone). None off x86-64 and arm64."""
    if platform.machine() not in SYSCALLS:
        return None
    arch, nr = SYSCALLS[platform.machine()]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    program: list = [
        (ld, 0, 0, 4),  # the audit arch
        (jeq, 0, "kill", arch),
        (ld, 0, 0, 0),  # the syscall number
        (jge, "kill", 0, 0x40000000),  # x32 numbers
        *[(jeq, "eperm", 0, nr[name]) for name in REFUSED_SYSCALLS],
    ]
    if not processes:
        program += [(jeq, "eperm", 0, nr[name]) for name in ("fork", "vfork") if name in nr]
        program += [
            (jeq, "enosys", 0, nr["clone3"]),
            (jeq, 0, "allow", nr["clone"]),
            (ld, 0, 0, 16),  # clone's flags: the low word of its first argument
            (jset, "allow", "eperm", 0x00010000),  # CLONE_THREAD
        ]
    program += ["allow", (ret, 0, 0, 0x7FFF0000), "eperm", (ret, 0, 0, 0x00050000 | 1),
                "enosys", (ret, 0, 0, 0x00050000 | 38), "kill", (ret, 0, 0, 0x80000000)]
    labels, position = {}, 0
    for item in program:
        if isinstance(item, str):
            labels[item] = position
        else:
            position += 1
    code, position = [], 0
    for item in program:
        if isinstance(item, str):
            continue
        op, jt, jf, k = item
        jt = labels[jt] - position - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - position - 1 if isinstance(jf, str) else jf
        code.append(struct.pack("=HBBI", op, jt, jf, k))
        position += 1
    return b"".join(code)


# ------------------------------------------------------------------------------------------- processes


def _environment(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "TMPDIR": home}


def _wait(proc: subprocess.Popen, deadline: float, watch=None) -> bool:
    """Wait for ``proc`` until ``deadline``, or until ``watch()`` (called every WATCH_S) is true; True when
    it ended."""
    while True:
        if proc.poll() is not None:
            return True
        left = deadline - time.monotonic()
        if left <= 0 or (watch is not None and watch()):
            return False
        try:
            proc.wait(timeout=min(left, WATCH_S))
            return True
        except subprocess.TimeoutExpired:
            pass


class _RunQueue:
    """How long a run's processes (and all their descendants) were runnable but waited for a CPU, from the
    scheduler's /proc/PID/task/TID/schedstat (its second field: nanoseconds spent on a run queue). Sampled
    every WATCH_S; a thread that ended keeps its last sample. Waits of two processes at the same moment both
    count, so under load this errs towards "starved" (could not run), never towards "too slow"."""

    def __init__(self, roots: tuple[int, ...]):
        self.roots = roots
        self.waits: dict[int, int] = {}  # tid -> its run-queue wait at the last sample, ns
        self.gone = 0  # waits of threads whose id was reused, ns

    def sample(self) -> None:
        for pid, tasks in _process_tree(self.roots):
            for task in tasks:
                try:
                    with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as f:
                        wait = int(f.read().split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                tid = int(task)
                last = self.waits.get(tid, 0)
                if wait < last:  # a new thread with a reused id
                    self.gone += last
                self.waits[tid] = wait

    def waited_s(self) -> float:
        return (self.gone + sum(self.waits.values())) / 1e9


def _wait_own_time(proc: subprocess.Popen, start: float, wall_s: float, queue: _RunQueue,
                   watch=None) -> tuple[bool, bool]:
    """Wait for ``proc`` until the run has had ``wall_s`` of its own time: wall time minus the time its
    processes waited for a CPU, at most STARVED_GRACE × wall_s of wall time. (timed_out, starved): starved
    when it was cut off at that cap before getting its own ``wall_s``, the machine's doing, not the answer's.
    Time asleep (an answer that hangs or sleeps) and time on a CPU (an answer that spins) count in full."""
    cap = start + wall_s * STARVED_GRACE
    deadline = start + wall_s
    while not _wait(proc, deadline, watch):
        queue.sample()
        now = time.monotonic()
        owed = start + wall_s + queue.waited_s()  # when the run will have had wall_s of its own time
        if owed <= now + WATCH_S / 2:
            return True, False
        if now >= cap:
            return True, True
        deadline = min(owed, cap)
    return False, False


def _kill(proc: subprocess.Popen) -> None:
    """Kill a process group started with start_new_session and reap it; for bwrap, also the sandbox's PID 1
    (its own session), which takes every process of the sandbox's PID namespace with it, and wait for it."""
    sandbox_init = _sandbox_pid(proc)
    if getattr(proc, "bench_info_fd", None) is not None:
        os.close(proc.bench_info_fd)
        proc.bench_info_fd = None
    for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill,
                 lambda: sandbox_init and os.kill(sandbox_init, signal.SIGKILL)):
        try:
            kill()
        except OSError:
            pass
    proc.wait()
    gone_by = time.monotonic() + 2
    while sandbox_init and _alive(sandbox_init) and time.monotonic() < gone_by:
        time.sleep(0.005)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a dead sandbox's PID 1 waits for its new parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def _sandbox_pid(proc: subprocess.Popen) -> int | None:
    """The host PID of the sandbox's PID 1, from bwrap's --info-fd (written before the program starts);
    None until bwrap has written it, or without bwrap."""
    if getattr(proc, "bench_sandbox_pid", None):
        return proc.bench_sandbox_pid
    fd = getattr(proc, "bench_info_fd", None)
    if fd is None:
        return None
    try:
        os.set_blocking(fd, False)
        data = os.read(fd, 65536)
    except OSError:
        return None
    os.close(fd)
    proc.bench_info_fd = None
    try:  # bwrap's own object comes first; nothing after it is read
        pid = json.JSONDecoder().raw_decode(data.decode("utf-8", "replace").lstrip())[0].get("child-pid")
    except (ValueError, AttributeError):
        return None
    proc.bench_sandbox_pid = pid if isinstance(pid, int) and pid > 1 else None
    return proc.bench_sandbox_pid


def _excess(proc: subprocess.Popen, limits: Limits, mounts: tuple[str, ...]) -> str | None:
    """What the sandbox's processes hold together beyond its limits (memory, files), or None."""
    sandbox = _sandbox_pid(proc)
    if not sandbox:
        return None
    if _memory_mb(sandbox) > limits.memory_mb:
        return f"the processes together used more than {limits.memory_mb} MB of memory"
    used = 0
    try:  # until bwrap has moved the sandbox onto its new root, /proc/PID/root is the host's
        ready = os.stat(f"/proc/{sandbox}/root").st_dev != os.stat("/").st_dev
    except OSError:
        ready = False
    for mount in mounts if ready else ():  # tmpfs inodes cost kernel memory; their number has no limit
        try:
            info = os.statvfs(f"/proc/{sandbox}/root{mount}")
            used += info.f_files - info.f_ffree
        except OSError:
            pass
    if used > MAX_FILES:
        return f"more than {MAX_FILES} files were created"
    return None


def _process_tree(roots) -> Iterator[tuple[int, list[str]]]:
    """Each process of the trees under ``roots`` once, with its thread ids, read from /proc (a process that
    is gone is skipped)."""
    seen, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children", "rb") as f:
                    stack += [int(child) for child in f.read().split()]
            except (OSError, ValueError):
                continue
        yield pid, tasks


def _memory_mb(root: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    pages = 0
    for pid, _ in _process_tree((root,)):
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                pages += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _read_until(stream, deadline: float, limit: int, proc: subprocess.Popen, limits: Limits,
                mounts: tuple[str, ...]) -> tuple[bytes, str | None]:
    """What the sandbox sends until it closes the pipe or ``deadline``, watching its processes every WATCH_S;
    (b"", why) as soon as they hold more than their limits allow together."""
    import select

    chunks, size = [], 0
    fd = stream.fileno()
    while size <= limit:
        excess = _excess(proc, limits, mounts)
        if excess:
            return b"", excess
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], min(left, WATCH_S))
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit], None


def _last_line(stream) -> str:
    """The last non-empty line a process printed (a crash's last words), from its final OUTPUT_CHARS."""
    stream.seek(0, os.SEEK_END)
    stream.seek(max(0, stream.tell() - OUTPUT_CHARS))
    lines = stream.read().decode("utf-8", "replace").splitlines()
    return next((line for line in reversed(lines) if line.strip()), "")


# ------------------------------------------------------------------------------------------ reporting


def _text(value) -> str:
    """Valid UTF-8 text from whatever the sandbox sent (a lone surrogate becomes U+FFFD)."""
    return clean_text(str(value))[0]


def _one_line(text: str) -> str:
    text = " ".join(_text(text).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def _events(data: bytes) -> list[dict]:
    """The trusted runner's JSON lines."""
    events = []
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _ended(returncode: int | None, limits: Limits) -> str:
    """Why a sandboxed process ended, from its exit status (bwrap passes the sandboxed child's on)."""
    if returncode is None:
        return "it did not end"
    if returncode == CPU_EXIT:
        return f"CPU time limit of {limits.cpu_s} s exceeded"
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        if signum == signal.SIGXCPU:
            return f"CPU time limit of {limits.cpu_s} s exceeded"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


def _assemble(events: list[dict], answer_status: int | None, tests_status: int | None, timed_out: bool,
              limits: Limits, answer_last: str, tests_last: str, summary: str,
              excess: str | None = None, starved: bool = False) -> SandboxReport:
    names: list[str] = []
    results: dict[str, TestOutcome] = {}
    ended: set[str] = set()
    error = done = None
    answer_gone = False
    for event in events:
        if not names and isinstance(event.get("tests"), list):
            names = [n for n in event["tests"] if isinstance(n, str)]
        elif isinstance(event.get("outcome"), str) and isinstance(event.get("passed"), bool):
            name = event["outcome"]
            results.setdefault(name, TestOutcome(name, event["passed"], _one_line(event.get("message", ""))))
            if event.get("answer_ended"):
                ended.add(name)
        elif event.get("answer_ended"):
            answer_gone = True
        elif isinstance(event.get("error"), str) and error is None:
            error = _one_line(event["error"])
        elif event.get("done") is True:
            done = True

    if timed_out and starved:
        error = (f"the machine was too busy: in {limits.wall_s * STARVED_GRACE:g} s its processes did not get "
                 f"{limits.wall_s:g} s of their own time (they waited for a CPU); stopped, nothing judged")
    elif timed_out:
        error = f"timed out after {limits.wall_s:g} s; the sandbox's processes were killed"
    elif (ended or answer_gone) and excess:
        error = f"the answer's process was killed: {excess}"
    elif (ended or answer_gone) and error is None:
        why = _ended(answer_status, limits)
        text = why if why.startswith("CPU") else f"the answer's process {why}"
        error = _one_line(f"{text}; its last output: {answer_last}" if answer_last and not why.startswith("CPU")
                          else text)
    elif error is None and not done:
        text = f"the test process {_ended(tests_status, limits)} before the tests finished"
        error = _one_line(f"{text}; its last output: {tests_last}" if tests_last else text)
    outcomes = tuple(
        TestOutcome(name, False, f"did not finish: {error}") if name in ended or name not in results
        else results[name]
        for name in names
    )
    if any(name not in results or name in ended for name in names) and error is None:
        error = "no result reported"
    return SandboxReport(outcomes=outcomes, error=error, isolation=summary, starved=timed_out and starved)
