"""The sandbox for real: results, limits and containment of answer code, never mocked (see test_redteam.py
for the attacks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from generator import sandbox
from generator.sandbox import Limits, SandboxUnavailable, TestOutcome, isolation, run_program, run_python_tests

ADD = "def add(a, b):\n    return a + b\n"
SANDBOXED = isolation().mode == "bubblewrap"
needs_bwrap = pytest.mark.skipif(not SANDBOXED, reason="needs bubblewrap")


def run(test_code: str, answer_code: str = ADD, setup_code: str = "", **limits) -> tuple:
    """Run dedented code; return the report and how long the run took."""
    start = time.monotonic()
    report = run_python_tests(textwrap.dedent(answer_code), textwrap.dedent(test_code), Limits(**limits),
                              setup_code=textwrap.dedent(setup_code))
    return report, time.monotonic() - start


def sandbox_processes(memory_mb: int) -> list[int]:
    """Processes of sandbox runs given this (unusual) memory limit; its config is on their command line."""
    marker = f'"memory_mb": {memory_mb},'.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


# -------------------------------------------------------------------------------------------- results


def test_passing_and_failing_tests_are_reported_with_their_messages():
    report, _ = run(
        """
        import answer

        def test_adds():
            assert answer.add(2, 3) == 5

        def test_with_message():
            assert answer.add(2, 2) == 5, "2 + 2 should be 5 here"

        def test_bare_assert():
            assert answer.add(1, 1) == 3

        def test_raises():
            answer.add(1, "x")

        async def test_coroutine_is_run():
            import asyncio
            await asyncio.sleep(0)
            raise AssertionError("the coroutine ran")

        def helper_not_a_test():
            raise AssertionError("never run")
        """
    )
    assert report.error is None
    assert report.outcomes == (
        TestOutcome("test_adds", True, ""),
        TestOutcome("test_with_message", False, "2 + 2 should be 5 here"),
        TestOutcome("test_bare_assert", False,
                    "assertion failed: assert answer.add(1, 1) == 3 (test_answer.py line 11)"),
        TestOutcome("test_raises", False,
                    "TypeError: unsupported operand type(s) for +: 'int' and 'str' (answer.py line 2)"),
        TestOutcome("test_coroutine_is_run", False, "the coroutine ran"),
    )
    assert report.isolation == isolation().summary


def test_plain_data_async_functions_constants_and_exceptions_cross():
    report, _ = run(
        """
        import asyncio
        import answer
        from answer import LIMIT, parse

        def test_plain_data_round_trips():
            value = {"a": [1, 2.5, None, True], ("t", 1): b"\\x00\\xff", "s": {1, 2}, "f": frozenset("ab")}
            assert answer.echo(value) == value
            assert type(answer.echo((1,))) is tuple

        def test_async_function_gives_an_awaitable():
            assert asyncio.run(answer.double_later(21)) == 42
            import inspect
            assert inspect.iscoroutinefunction(answer.double_later)
            assert answer.double_later.__doc__ == "Twice n, a moment later."
            assert answer.double_later.signature == "(n: int) -> int"

        def test_constants_are_read():
            assert LIMIT == 3 and answer.NAMES == ["x", "y"]

        def test_exceptions_come_back_as_builtin_types():
            try:
                parse("oops")
            except ValueError as exc:
                assert str(exc) == "not a number: 'oops'"
            else:
                raise AssertionError("no ValueError")

        def test_the_answers_own_exception_classes_have_stand_ins():
            try:
                answer.fail()
            except answer.Refused as exc:
                assert isinstance(exc, LookupError) and type(exc).__name__ == "Refused"
            else:
                raise AssertionError("not caught")

        def test_only_plain_data_is_returned():
            answer.handle()

        def test_missing_names_are_attribute_errors():
            assert not hasattr(answer, "nothing_here")

        def test_star_import_and_dir():
            namespace = {}
            exec("from answer import *", namespace)
            assert namespace["LIMIT"] == 3 and namespace["echo"](1) == 1
            assert "asyncio" not in dir(answer) and "parse" in dir(answer)
        """,
        """
        import asyncio

        LIMIT = 3
        NAMES = ["x", "y"]

        class Refused(KeyError):
            pass

        def echo(value):
            return value

        async def double_later(n: int) -> int:
            'Twice n, a moment later.'
            await asyncio.sleep(0)
            return 2 * n

        def parse(text):
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"not a number: {text!r}") from None

        def fail():
            raise Refused("no")

        def handle():
            return open
        """,
    )
    assert report.error is None
    assert [(o.name, o.passed) for o in report.outcomes] == [
        ("test_plain_data_round_trips", True),
        ("test_async_function_gives_an_awaitable", True),
        ("test_constants_are_read", True),
        ("test_exceptions_come_back_as_builtin_types", True),
        ("test_the_answers_own_exception_classes_have_stand_ins", True),
        ("test_only_plain_data_is_returned", False),
        ("test_missing_names_are_attribute_errors", True),
        ("test_star_import_and_dir", True),
    ], report.outcomes
    assert report.outcomes[5].message.startswith(
        "TypeError: handle() returned what cannot cross to the tests: a builtin_function_or_method object")


def test_the_fixture_runs_beside_the_answer_before_it_is_imported():
    report, _ = run(
        """
        import answer, fixture

        def test_the_answer_used_the_fake():
            fixture.reset()
            assert answer.fetch("https://example.test/a") == {"url": "https://example.test/a"}
            assert fixture.calls() == ["https://example.test/a"]

        def test_a_fixture_function_can_be_passed_to_the_answer():
            assert answer.apply(fixture.double, 4) == 8

        def test_the_fixtures_exceptions_are_caught_by_name():
            try:
                answer.fetch("https://example.test/missing")
            except fixture.ClientError as exc:
                assert "404" in str(exc)
            else:
                raise AssertionError("no ClientError")
        """,
        """
        import webclient

        def fetch(url):
            return webclient.get(url)

        def apply(function, value):
            return function(value)
        """,
        setup_code="""
        import sys, types

        CALLS = []

        class ClientError(Exception):
            pass

        def get(url):
            CALLS.append(url)
            if url.endswith("missing"):
                raise ClientError(f"404 for {url}")
            return {"url": url}

        def reset():
            CALLS.clear()

        def calls():
            return list(CALLS)

        def double(n):
            return 2 * n

        sys.modules["webclient"] = types.SimpleNamespace(get=get)
        """,
    )
    assert report.error is None
    assert all(o.passed for o in report.outcomes), report.outcomes


def test_an_answer_that_does_not_import_is_a_run_error():
    report, _ = run("import answer\ndef test_x():\n    pass\n", answer_code="def add(a, b)\n    return a + b\n")
    assert report.outcomes == ()
    assert report.error == "the answer failed to import: SyntaxError: expected ':' (answer.py, line 1)"


def test_setup_code_that_fails_is_named():
    report, _ = run("def test_x():\n    pass\n", setup_code="raise RuntimeError('broken fake')\n")
    assert report.error == "the check's setup code failed: RuntimeError: broken fake (fixture.py line 1)"


def test_unencodable_text_from_the_answer_comes_out_valid():
    report, _ = run("import answer\ndef test_x():\n    answer.poison()\n",
                    "def poison():\n    raise ValueError('\\ud800 bad')\n")
    assert report.outcomes[0].message == "ValueError: \ufffd bad (answer.py line 2)"
    run_ = run_program({"p.sh": "printf '\\355\\240\\200' > f.txt; printf '\\377'"}, ["bash", "p.sh"])
    assert (run_.stdout, run_.files["f.txt"]) == ("\ufffd", "\ufffd\ufffd\ufffd")


def test_long_messages_are_cut_to_one_line():
    report, _ = run("def test_long():\n    raise AssertionError('line one\\nline two ' + 'x' * 1000)\n")
    message = report.outcomes[0].message
    assert message.startswith("line one line two xxx") and len(message) == 300 and message.endswith("…")


def test_a_crash_is_reported_with_its_last_words():
    report, _ = run(
        "import answer\ndef test_exits():\n    answer.give_up()\ndef test_after():\n    pass\n",
        "import os, sys\ndef give_up():\n    print('giving up now', file=sys.stderr)\n    sys.stderr.flush()\n"
        "    os._exit(7)\n",
    )
    assert report.error == "the answer's process exited with status 7; its last output: giving up now"
    assert report.outcomes == (
        TestOutcome("test_exits", False, f"did not finish: {report.error}"),
        TestOutcome("test_after", False, f"did not finish: {report.error}"),
    )


def test_a_crash_of_the_test_code_itself_is_reported():
    report, _ = run("import os, sys\ndef test_exits():\n    print('tests gave up', file=sys.stderr)\n"
                    "    sys.stderr.flush()\n    os._exit(3)\n")
    assert report.error == ("the test process exited with status 3 before the tests finished; "
                            "its last output: tests gave up")


# ------------------------------------------------------------------------------------------------ limits


def test_an_endless_loop_is_killed_at_the_wall_clock_limit_with_its_whole_sandbox():
    report, took = run(
        """
        import answer

        def test_first():
            pass

        def test_spins():
            answer.spin()

        def test_never_reached():
            pass
        """,
        "import threading, time\ndef spin():\n    threading.Thread(target=lambda: time.sleep(600)).start()\n"
        "    while True:\n        pass\n",
        wall_s=1.5,
        memory_mb=1021,
    )
    assert [(o.name, o.passed) for o in report.outcomes] == [
        ("test_first", True), ("test_spins", False), ("test_never_reached", False)]
    if not report.starved:  # on a machine so busy that the spinning answer got under a third of a CPU: error
        assert report.error == "timed out after 1.5 s; the sandbox's processes were killed"
        assert report.outcomes[1].message == "did not finish: timed out after 1.5 s; the sandbox's processes were killed"
    assert took < 1.5 * sandbox.STARVED_GRACE + 3
    assert sandbox_processes(1021) == []


# A run is timed by its own time: wall time minus the time its processes waited for a CPU. A correct answer
# on a starved machine must come out as "could not run", never as a timeout of the answer (a full suite on a
# loaded 2-core machine once failed a correct async-bug answer with "timed out after 30 s").


class _FakeQueue:
    """A run queue whose processes waited ``share`` of the wall time since ``start`` for a CPU."""

    def __init__(self, start: float, share: float):
        self.start, self.share = start, share

    def sample(self) -> None:
        pass

    def waited_s(self) -> float:
        return (time.monotonic() - self.start) * self.share


@pytest.mark.parametrize("share, starved, took", [
    (0.0, False, (0.4, 0.7)),  # never waited: a hang, cut at wall_s
    (0.5, False, (0.7, 1.1)),  # half the time waiting: cut when it had wall_s of its own, at 2 × wall_s
    (0.9, True, (1.2, 1.5)),   # starved: stopped at STARVED_GRACE × wall_s without a verdict
])
def test_the_wall_clock_counts_only_the_runs_own_time(share, starved, took):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        start = time.monotonic()
        result = sandbox._wait_own_time(sleeper, start, 0.4, _FakeQueue(start, share))
        elapsed = time.monotonic() - start
    finally:
        sleeper.kill()
        sleeper.wait()
    assert result == (True, starved)
    assert took[0] <= elapsed < took[1]


def test_a_run_that_ends_in_time_is_neither_timed_out_nor_starved():
    quick = subprocess.Popen(["true"])
    start = time.monotonic()
    assert sandbox._wait_own_time(quick, start, 5, _FakeQueue(start, 0.9)) == (False, False)


def test_the_run_queue_wait_of_a_process_competing_for_its_cpu_is_measured():
    cpu = min(os.sched_getaffinity(0))
    spin = f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True:\n    pass\n"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]  # two on one CPU: each waits
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        queue, idle = sandbox._RunQueue((spinners[0].pid,)), sandbox._RunQueue((sleeper.pid,))
        time.sleep(0.2)
        queue.sample(), idle.sample()
        before = queue.waited_s()
        time.sleep(1.0)
        queue.sample(), idle.sample()
    finally:
        for proc in (*spinners, sleeper):
            proc.kill()
            proc.wait()
    assert queue.waited_s() - before > 0.2  # about 0.5 s of the 1 s: the other spinner had the CPU
    assert idle.waited_s() < 0.05  # asleep is not waiting


@needs_bwrap
def test_a_starved_run_is_an_error_of_the_check_not_a_failure_of_the_answer(monkeypatch):
    from generator.checks import run_checks
    from generator.config import TaskSpec

    # Forced interleaving: the run's processes "wait" for a CPU 95% of the time, so a correct answer whose
    # tests take longer than the wall clock (here, sleeping past it) never gets its own wall_s.
    monkeypatch.setattr(sandbox._RunQueue, "waited_s", lambda self: 0.95 * (time.monotonic() - self.started))
    real_init = sandbox._RunQueue.__init__

    def init(self, roots):
        real_init(self, roots)
        self.started = time.monotonic()

    monkeypatch.setattr(sandbox._RunQueue, "__init__", init)
    report, took = run("import answer, time\ndef test_slow():\n    time.sleep(5)\n    assert answer.add(1, 2) == 3\n",
                       wall_s=0.5)
    assert report.starved and report.error.startswith("the machine was too busy"), report
    assert report.outcomes == (TestOutcome("test_slow", False, f"did not finish: {report.error}"),)
    assert took < 0.5 * sandbox.STARVED_GRACE + 2
    task = TaskSpec.model_validate({"id": "t", "title": "T", "prompt": "p", "checks": [
        {"type": "python", "timeout_s": 0.5, "code": "import answer, time\ndef test_x():\n    time.sleep(5)\n"}]})
    (result,) = run_checks(task, "```python\ndef f():\n    return 1\n```\n")
    assert result.status == "error" and "too busy" in result.detail, result


def test_cpu_time_is_limited():
    report, took = run("import answer\ndef test_spins():\n    answer.spin()\n",
                       "def spin():\n    while True:\n        pass\n", cpu_s=1, wall_s=10)
    assert report.error == "CPU time limit of 1 s exceeded"
    assert report.outcomes == (TestOutcome("test_spins", False, "did not finish: CPU time limit of 1 s exceeded"),)
    assert took < 8


def test_a_10_gb_allocation_fails_with_memory_error():
    report, took = run("import answer\ndef test_allocates():\n    answer.allocate()\n",
                       "def allocate():\n    return len(bytearray(10 * 1024**3))\n")
    assert report.outcomes == (TestOutcome("test_allocates", False, "MemoryError (memory limit 1024 MB)"),)
    assert took < 10


def test_files_and_output_are_limited_in_size():
    report, took = run(
        "import answer\ndef test_writes():\n    answer.write()\ndef test_prints():\n    answer.flood()\n",
        "def write():\n    open('big.bin', 'wb').write(b'x' * 3 * 1024 * 1024)\n"
        "def flood():\n    while True:\n        print('y' * 10_000)\n",
        file_mb=1,
    )
    assert [o.message.split(":")[0] for o in report.outcomes] == ["OSError", "OSError"], report.outcomes
    assert all("File too large" in o.message for o in report.outcomes)
    assert took < 10


@needs_bwrap
def test_answers_cannot_start_processes():
    report, _ = run(
        """
        import answer

        def test_fork():
            answer.fork()

        def test_subprocess():
            answer.shell()
        """,
        "import os, subprocess\ndef fork():\n    os.fork()\ndef shell():\n    subprocess.run(['true'])\n",
    )
    assert [o.message.split(" (")[0] for o in report.outcomes] == [
        "PermissionError: [Errno 1] Operation not permitted",
        "PermissionError: [Errno 1] Operation not permitted",
    ]


def test_a_thread_bomb_stops_at_the_process_limit():
    report, took = run(
        "import answer\ndef test_threads():\n    answer.bomb()\n",
        """
        import threading

        def bomb():
            started, stop = 0, threading.Event()
            try:
                while started < 10_000:
                    threading.Thread(target=stop.wait, daemon=True).start()
                    started += 1
            except RuntimeError as exc:
                raise AssertionError(f"{started} threads, then {exc}")
            finally:
                stop.set()
        """,
        nproc=16,
    )
    message = report.outcomes[0].message
    assert "threads, then can't start new thread" in message, message
    assert int(message.split()[0]) < 16, message
    assert took < 10


# ----------------------------------------------------------------------------------------- containment


@needs_bwrap
def test_no_network_only_a_loopback_of_its_own():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        report, _ = run(
            "import answer\ndef test_connect():\n    answer.connect()\n",
            f"import socket\ndef connect():\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n",
        )
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
    assert report.outcomes[0].message.startswith("ConnectionRefusedError: [Errno 111]"), report.outcomes


@needs_bwrap
def test_the_parents_secrets_and_files_are_not_visible(monkeypatch):
    secret = "bench-secret-value-7f3a9c"
    monkeypatch.setenv("BENCH_TEST_SECRET", secret)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env={**os.environ})
    links = {name for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32") if os.path.lexists("/" + name)}
    prefix_top = set() if sys.base_prefix.startswith("/usr/") else {Path(sys.base_prefix).parts[1]}
    expected = sorted(links | prefix_top | {"dev", "etc", "proc", "tmp", "usr", "work"})
    try:
        report, _ = run(
            f"""
            import answer
            EXPECTED = {expected!r}

            def test_environment_is_minimal():
                assert answer.environment() == ["HOME", "LANG", "PATH", "TMPDIR"]

            def test_no_secret_in_any_process_environment():
                assert answer.secrets() == []

            def test_the_file_system_holds_only_what_python_needs():
                assert answer.top_level() == EXPECTED, answer.top_level()
                assert answer.missing() == []
            """,
            f"""
            import glob, os

            def environment():
                assert os.environ["HOME"] == os.getcwd() == "/work"
                return sorted(os.environ)

            def secrets():
                seen = [name for name, value in os.environ.items() if "{secret}" in value]
                for path in glob.glob("/proc/[0-9]*/environ"):
                    try:
                        with open(path, "rb") as f:
                            if b"{secret}" in f.read():
                                seen.append(path)
                    except OSError:
                        pass
                return seen

            def top_level():
                return sorted(os.listdir("/"))

            def missing():
                return [p for p in ({os.getcwd()!r}, {sys.prefix!r}, "/etc/passwd", "/home", "/var")
                        if os.path.exists(p)]
            """,
        )
    finally:
        holder.kill()
        holder.wait()
    assert report.error is None
    assert [(o.name, o.passed) for o in report.outcomes] == [
        ("test_environment_is_minimal", True),
        ("test_no_secret_in_any_process_environment", True),
        ("test_the_file_system_holds_only_what_python_needs", True),
    ], report.outcomes


@needs_bwrap
def test_writing_outside_the_work_directory_fails(tmp_path):
    tmp_path.chmod(0o777)
    target = tmp_path / "escaped.txt"
    report, _ = run(
        "import answer\ndef test_writes():\n    assert answer.write() == [], answer.write()\n",
        f"""
        import os

        def write():
            written = []
            for path in ({str(target)!r}, "/usr/escaped", "/escaped", "/dev/escaped", {sys.base_prefix + "/x.pth"!r}):
                try:
                    open(path, "w").write("escaped")
                    written.append(path)
                except OSError:
                    pass
            open("notes.txt", "w").write("kept in the sandbox")
            assert open(os.path.join(os.environ["TMPDIR"], "notes.txt")).read() == "kept in the sandbox"
            return written
        """,
    )
    assert report.outcomes == (TestOutcome("test_writes", True, ""),)
    assert not target.exists()
    assert not Path(sys.base_prefix, "x.pth").exists()


def test_isolation_is_described():
    summary = isolation().summary
    if SANDBOXED:
        assert summary.startswith("bubblewrap: own user, PID, network, IPC and UTS namespaces")
        assert "only plain data crosses" in summary


def test_without_bubblewrap_answer_code_is_refused_unless_allowed(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv(sandbox.OPT_IN_ENV, raising=False)
    with pytest.raises(SandboxUnavailable) as refused:
        run_python_tests(ADD, "def test_x():\n    pass\n")
    assert str(refused.value) == (
        "cannot run answer code safely: bubblewrap (bwrap) is not installed. Install bubblewrap (Debian/Ubuntu: "
        "apt-get install bubblewrap), or run it unsandboxed at your own risk with --allow-unsandboxed "
        "(BENCH_ALLOW_UNSANDBOXED=1)."
    )
    with pytest.raises(SandboxUnavailable):
        run_program({}, ["true"])
    assert isolation().summary == "no sandbox (bubblewrap (bwrap) is not installed): answer code is not run"
    monkeypatch.setenv(sandbox.OPT_IN_ENV, "1")
    report = run_python_tests(ADD, "import answer\ndef test_x():\n    assert answer.add(1, 2) == 3\n")
    assert report.outcomes == (TestOutcome("test_x", True, ""),)
    assert report.isolation.startswith(
        "NOT sandboxed (bubblewrap (bwrap) is not installed; allowed by BENCH_ALLOW_UNSANDBOXED)")
    program = run_program({"hello.sh": "echo hi; echo kept > out.txt"}, ["/bin/sh", "hello.sh"])
    assert (program.exit_code, program.stdout, program.files["out.txt"]) == (0, "hi\n", "kept\n")
    assert program.isolation.startswith("NOT sandboxed")


# ------------------------------------------------------------------------------------------------ programs


def test_a_program_runs_with_stub_commands_and_writable_directories():
    run = run_program(
        {
            "bin/podctl": "#!/bin/sh\necho \"$@\" >> calls.log\nif [ \"$1\" = list ]; then printf 'pod-1\\npod-2\\n'; fi\n",
            "job.sh": "set -e\nfor id in $(podctl list); do podctl stop \"$id\"; echo \"stopped $id\" >> /var/log/job.log; done\n"
                      "echo done; echo warning >&2; touch /tmp/lock; exit 3\n",
        },
        ["bash", "job.sh"],
        writable_dirs=("/var/log/job", "/var/log", "/run/lock", "/tmp"),
    )
    assert (run.exit_code, run.stdout, run.stderr, run.timed_out, run.error) == (3, "done\n", "warning\n", False, None)
    assert run.files["calls.log"] == "list\nstop pod-1\nstop pod-2\n"
    assert run.files["/var/log/job.log"] == "stopped pod-1\nstopped pod-2\n"
    assert run.files["/tmp/lock"] == ""
    assert run.isolation == isolation().summary



def test_nested_writable_directories_are_mounted_parents_first():
    # Given child first: a tmpfs on /run mounted after /run/lock would hide /run/lock.
    run = run_program({"job.sh": "echo lock > /run/lock/job.lock; echo pid > /run/job.pid\n"}, ["sh", "job.sh"],
                      writable_dirs=("/run/lock", "/run"))
    assert (run.exit_code, run.error) == (0, None), run
    assert {k: v for k, v in run.files.items() if k.startswith("/")} == {"/run/lock/job.lock": "lock\n", "/run/job.pid": "pid\n"}
    command = sandbox._bwrap_command(isolation(), ["true"], 1 << 20, ("/run/lock/x", "/run/lock", "/run"), None)
    mounted = [command[i + 1] for i, arg in enumerate(command) if arg == "--tmpfs"]
    assert mounted == ["/work", "/tmp", "/run", "/run/lock", "/run/lock/x"]

def test_a_program_is_stopped_at_the_wall_clock_with_everything_it_started():
    start = time.monotonic()
    run = run_program({"slow.sh": "(sleep 100 &) ; echo started > state.txt; sleep 100\n"}, ["bash", "slow.sh"],
                      Limits(wall_s=1.5))
    assert run.timed_out and run.exit_code is None
    assert run.files["state.txt"] == "started\n"
    assert time.monotonic() - start < 5


def test_bad_program_paths_are_refused():
    with pytest.raises(ValueError, match="writable_dirs must be absolute"):
        run_program({}, ["true"], writable_dirs=("var/log",))
    with pytest.raises(ValueError, match="files must be relative"):
        run_program({"../x": ""}, ["true"])


def test_the_cli_flag_opts_in_for_run_and_render(monkeypatch, tmp_path):
    from generator import cli

    monkeypatch.delenv(sandbox.OPT_IN_ENV, raising=False)
    assert cli.main(["render", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert sandbox.OPT_IN_ENV not in os.environ
    for command in ("run", "render"):
        assert cli.main([command, "--allow-unsandboxed", "--config", str(tmp_path / "missing.yaml")]) == 2
        assert os.environ[sandbox.OPT_IN_ENV] == "1"
        monkeypatch.delenv(sandbox.OPT_IN_ENV)


def test_without_a_sandbox_a_code_check_is_an_error_that_says_what_to_do(monkeypatch):
    from generator.checks import run_checks
    from generator.config import TaskSpec

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv(sandbox.OPT_IN_ENV, raising=False)
    task = TaskSpec.model_validate({"id": "t", "title": "T", "prompt": "p",
                                    "checks": [{"type": "python", "code": "def test_x():\n    pass\n"}]})
    (result,) = run_checks(task, "```python\ndef f():\n    pass\n```\n")
    assert result.status == "error" and "Install bubblewrap" in result.detail, result


def test_an_unsandboxed_code_check_says_so_in_its_detail(monkeypatch):
    from generator.checks import run_checks
    from generator.config import TaskSpec

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv(sandbox.OPT_IN_ENV, "1")
    task = TaskSpec.model_validate({"id": "t", "title": "T", "prompt": "p", "checks": [
        {"type": "python", "code": "import answer\ndef test_x():\n    assert answer.f() == 1\n"}]})
    (result,) = run_checks(task, "```python\ndef f():\n    return 1\n```\n")
    assert (result.status, result.detail) == (
        "pass", "1 of 1 tests pass; NOT sandboxed (bubblewrap (bwrap) is not installed; allowed by "
                "BENCH_ALLOW_UNSANDBOXED)"), result


@needs_bwrap
def test_a_program_given_a_local_zone_sees_it_as_etc_localtime_as_under_cron():
    script = "echo \"env=${TZ-unset} $(date +%z)\"; TZ=UTC; echo \"unexported $(date +%z)\"; export TZ; date +%z\n"
    run = run_program({"t.sh": script}, ["bash", "t.sh"], local_zone="Asia/Kathmandu")
    assert run.stdout.split("\n")[:3] == ["env=unset +0545", "unexported +0545", "+0000"], run.stdout
    assert run_program({"t.sh": "date +%z"}, ["sh", "t.sh"]).stdout == "+0000\n"  # no /etc/localtime: UTC


@needs_bwrap
def test_a_local_zone_is_a_tzdata_name_or_refused():
    assert sandbox.local_zone_file("Asia/Kathmandu") == "/usr/share/zoneinfo/Asia/Kathmandu"
    for bad in ("../../etc/shadow", "/etc/passwd", "Asia/../../etc", "Nowhere/Atlantis", ""):
        assert sandbox.local_zone_file(bad) is None, bad
    run = run_program({"t.sh": "date"}, ["sh", "t.sh"], local_zone="Nowhere/Atlantis")
    assert run.exit_code is None and "needs tzdata" in run.error
