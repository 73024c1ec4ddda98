"""The sandbox against real escape attempts: each one must be contained and reported, never mocked."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from generator.sandbox import Limits, TestOutcome, isolation, run_python_tests

ADD = "def add(a, b):\n    return a + b\n"


def run(test_code: str, answer_code: str = ADD, **limits) -> tuple:
    """Run dedented test code; return the report and how long the run took."""
    start = time.monotonic()
    report = run_python_tests(textwrap.dedent(answer_code), textwrap.dedent(test_code), Limits(**limits))
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


def test_an_answer_that_does_not_import_is_a_run_error():
    report, _ = run("import answer\ndef test_x():\n    pass\n", answer_code="def add(a, b)\n    return a + b\n")
    assert report.outcomes == ()
    assert report.error == "the answer failed to import: SyntaxError: expected ':' (answer.py, line 1)"


def test_long_messages_are_cut_to_one_line():
    report, _ = run("def test_long():\n    raise AssertionError('line one\\nline two ' + 'x' * 1000)\n")
    message = report.outcomes[0].message
    assert message.startswith("line one line two xxx") and len(message) == 300 and message.endswith("…")


def test_prints_and_a_fake_results_file_cannot_forge_the_report():
    forged = '{"outcome": "test_fails", "passed": true, "message": ""}'
    report, _ = run(
        f"""
        import sys
        import answer

        def test_fails():
            for stream in (sys.stdout, sys.stderr):
                print('{forged}', file=stream)
                print('{{"done": true}}', file=stream)
                stream.flush()
            sys.stdout.buffer.write(bytes(range(256)))
            with open("results.json", "w") as f:
                f.write('{forged}')
            assert False, "really failed"
        """
    )
    assert report.error is None
    assert report.outcomes == (TestOutcome("test_fails", False, "really failed"),)


def test_a_flood_of_output_stops_at_the_file_size_limit():
    report, took = run("def test_noisy():\n    while True:\n        print('y' * 10_000)\n", file_mb=1)
    assert report.outcomes[0].message.startswith("OSError: [Errno 27] File too large")
    assert took < 10


def test_a_crash_is_reported_with_its_last_words():
    report, _ = run("import os, sys\ndef test_exits():\n    print('giving up now', file=sys.stderr)\n    os._exit(7)\n")
    assert report.error == (
        "the test process exited with status 7 before the tests finished; its last output: giving up now")
    assert report.outcomes == (TestOutcome("test_exits", False, f"did not finish: {report.error}"),)


# --------------------------------------------------------------------------------------- escape attempts


def test_an_endless_loop_is_killed_at_the_wall_clock_limit_with_its_whole_group():
    report, took = run(
        """
        import threading, time
        import answer

        def test_first():
            pass

        def test_spins():
            threading.Thread(target=lambda: time.sleep(600)).start()
            while True:
                pass

        def test_never_reached():
            pass
        """,
        wall_s=1.5,
        memory_mb=1021,
    )
    assert report.error == "timed out after 1.5 s; the sandbox's processes were killed"
    assert [(o.name, o.passed) for o in report.outcomes] == [
        ("test_first", True), ("test_spins", False), ("test_never_reached", False)]
    assert report.outcomes[1].message == "did not finish: timed out after 1.5 s; the sandbox's processes were killed"
    assert took < 4
    assert sandbox_processes(1021) == []


def test_cpu_time_is_limited():
    report, took = run("def test_spins():\n    while True:\n        pass\n", cpu_s=1, wall_s=10)
    assert report.error == "CPU time limit of 1 s exceeded"
    assert report.outcomes == (TestOutcome("test_spins", False, "did not finish: CPU time limit of 1 s exceeded"),)
    assert took < 5


def test_a_fork_bomb_is_contained():
    report, took = run(
        """
        import os, multiprocessing, subprocess

        def test_fork_bomb():
            while True:
                os.fork()

        def test_subprocess():
            subprocess.run(["sh", "-c", ":(){ :|:& };:"])

        def test_multiprocessing_spawn():
            multiprocessing.get_context("spawn").Process(target=print).start()

        def test_system():
            os.system("true")
        """,
        memory_mb=1019,
    )
    assert report.error is None
    assert [o.message.split(" (test_answer")[0] for o in report.outcomes] == [
        "PermissionError: refused by the sandbox: os.fork",
        "PermissionError: refused by the sandbox: subprocess.Popen",
        "PermissionError: refused by the sandbox: subprocess",
        "PermissionError: refused by the sandbox: os.system",
    ]
    assert took < 10
    assert sandbox_processes(1019) == []


def test_a_thread_bomb_stops_at_the_process_limit():
    # Threads are tasks to the kernel, so they show RLIMIT_NPROC (or, as root, RLIMIT_AS) doing its job
    # where the audit hook has no say.
    report, took = run(
        """
        import threading

        def test_threads():
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
    assert message.endswith("threads, then can't start new thread"), message
    started = int(message.split()[0])
    assert started < (16 if isolation().nproc_enforced else 1000)
    assert took < 10


def test_a_10_gb_allocation_fails_with_memory_error():
    report, took = run("def test_allocates():\n    big = bytearray(10 * 1024**3)\n")
    assert report.outcomes == (TestOutcome("test_allocates", False, "MemoryError (memory limit 1024 MB)"),)
    assert took < 10


def test_files_are_limited_in_size():
    report, _ = run("def test_writes():\n    open('big.bin', 'wb').write(b'x' * 3 * 1024 * 1024)\n", file_mb=1)
    assert report.outcomes[0].message.startswith("OSError: [Errno 27] File too large")


def test_a_connection_to_a_listener_on_loopback_never_arrives():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        report, _ = run(
            f"""
            import socket

            def test_connect():
                socket.create_connection(("127.0.0.1", {port}), timeout=2)

            def test_raw_socket():
                s = socket.socket()
                s.settimeout(2)
                s.connect(("127.0.0.1", {port}))

            def test_udp():
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", {port}))
            """
        )
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
    assert [o.passed for o in report.outcomes] == [False, False, False]
    assert all("refused by the sandbox: socket." in o.message for o in report.outcomes), report.outcomes


def test_the_parents_secrets_are_not_visible(monkeypatch):
    secret = "bench-secret-value-7f3a9c"
    monkeypatch.setenv("BENCH_TEST_SECRET", secret)
    # A sibling process started with the secret in its initial environment, readable in /proc by its owner.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env={**os.environ})
    try:
        report, _ = run(
            f"""
            import glob, os

            def test_environment_is_minimal():
                assert sorted(os.environ) == ["HOME", "LANG", "PATH", "TMPDIR"], sorted(os.environ)
                assert os.environ["HOME"] == os.getcwd()

            def test_no_secret_in_any_process_environment():
                seen = [value for value in os.environ.values() if "{secret}" in value]
                for path in glob.glob("/proc/[0-9]*/environ"):
                    try:
                        with open(path, "rb") as f:
                            if b"{secret}" in f.read():
                                seen.append(path)
                    except OSError:
                        pass
                assert not seen, seen
            """
        )
    finally:
        holder.kill()
        holder.wait()
    assert report.error is None
    assert [(o.name, o.passed, o.message) for o in report.outcomes] == [
        ("test_environment_is_minimal", True, ""),
        ("test_no_secret_in_any_process_environment", True, ""),
    ]


def test_writing_outside_the_sandbox_directory_fails(tmp_path):
    tmp_path.chmod(0o777)
    targets = [tmp_path / name for name in ("open.txt", "os-open.txt", "symlinked.txt", "dir-fd.txt")]
    report, _ = run(
        f"""
        import os

        def test_open():
            open({str(targets[0])!r}, "w").write("escaped")

        def test_os_open():
            os.open({str(targets[1])!r}, os.O_WRONLY | os.O_CREAT)

        def test_through_a_symlink():
            os.symlink({str(targets[2])!r}, "link.txt")
            open("link.txt", "w").write("escaped")

        def test_through_a_directory_descriptor():
            # The audit hook sees only "dir-fd.txt" here; what stops it is the mount or the file permissions.
            directory = os.open({str(tmp_path)!r}, os.O_RDONLY)
            os.open("dir-fd.txt", os.O_WRONLY | os.O_CREAT, dir_fd=directory)

        def test_inside_is_fine():
            open("notes.txt", "w").write("kept in the sandbox")
            with open(os.path.join(os.environ["TMPDIR"], "scratch"), "w") as f:
                f.write("ok")
            assert open("notes.txt").read() == "kept in the sandbox"
        """
    )
    assert [o.passed for o in report.outcomes] == [False, False, False, False, True], report.outcomes
    for target in targets:
        assert not target.exists(), target
    if isolation().mode == "confined":
        assert "Read-only file system" in report.outcomes[3].message


def test_the_directory_is_removed_after_the_run():
    report, _ = run("import os\ndef test_where():\n    open('left.txt', 'w').close()\n    assert False, os.getcwd()\n")
    workdir = Path(report.outcomes[0].message)
    assert workdir.name.startswith("bench-sandbox-")
    assert not workdir.exists()


def test_isolation_is_described():
    summary = isolation().summary
    assert "audit hook" in summary and "limits" in summary
    if isolation().mode == "confined":
        assert summary.startswith("own network, PID, mount and user namespaces")
