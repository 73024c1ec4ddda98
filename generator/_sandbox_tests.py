"""The trusted side of run_python_tests: run a check's test_* functions against proxies of the sandboxed answer.

Started by generator/sandbox.py as ``python -I -B _sandbox_tests.py CONFIG_JSON`` outside the sandbox, in a
private directory holding test_answer.py. No answer code ever runs in this process: ``import answer`` and
``import fixture`` give proxies whose functions send their arguments to the sandboxed process
(generator/_sandbox_harness.py) and return what comes back, decoded from tagged JSON into fresh builtin
objects (None, bool, int, float, str, bytes, list, tuple, dict, set, frozenset). An exception comes back as
the nearest builtin exception type, or a local stand-in class named like the answer's whose bases are such
stand-ins or builtins, never as anything of the answer's. Each outcome is written here, by this process, as
a JSON line to the report descriptor.
"""

import asyncio
import base64
import builtins
import importlib.util
import inspect
import json
import os
import re
import sys
import threading
import traceback

CONFIG = json.loads(sys.argv[1])
MESSAGE_CHARS = 300
NAME = re.compile(r"^[\w.<>]{1,200}$")
REFUSED_BUILTINS = (StopIteration, StopAsyncIteration)
_write = os.write


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def report(event: dict) -> None:
    _write(CONFIG["report_fd"], (json.dumps(event) + "\n").encode("utf-8", "replace"))


class AnswerProcessEnded(BaseException):
    """The sandboxed process is gone or broke the protocol; not an Exception, so tests cannot swallow it."""


class Channel:
    """Request and reply over two pipes, one at a time."""

    def __init__(self, request_fd: int, reply_fd: int):
        self.request_fd = request_fd
        self.reader = os.fdopen(reply_fd, "rb")
        self.lock = threading.Lock()
        self.dead: str | None = None  # why the answer's process can no longer answer

    def request(self, message: dict) -> dict:
        with self.lock:
            if self.dead:
                raise AnswerProcessEnded(self.dead)
            data = json.dumps(message, ensure_ascii=True).encode() + b"\n"
            if len(data) > CONFIG["message_bytes"]:
                raise ValueError(f"the arguments are larger than {CONFIG['message_bytes']} bytes")
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.request_fd, view):]
                line = self.reader.readline(CONFIG["message_bytes"] + 1)
            except OSError:
                line = b""
            if not line:
                self.dead = "the answer's process ended"
            elif not line.endswith(b"\n"):
                self.dead = f"the answer's process sent a reply larger than {CONFIG['message_bytes']} bytes"
            else:
                try:
                    reply = json.loads(line)
                except (ValueError, RecursionError):
                    reply = None
                if isinstance(reply, dict):
                    return reply
                self.dead = "the answer's process sent a malformed reply"
            raise AnswerProcessEnded(self.dead)


# ------------------------------------------------------------------------------------------ plain data


class WireError(TypeError):
    pass


def decode(value, depth: int = 0):
    if depth > 100:
        raise WireError("the answer's value is nested too deeply")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is dict and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "b" and type(inner) is str:
            try:
                return base64.b64decode(inner, validate=True)
            except ValueError:
                raise WireError("malformed bytes from the answer's process") from None
        if type(inner) is list:
            if tag == "d":
                result = {}
                for pair in inner:
                    if type(pair) is not list or len(pair) != 2:
                        raise WireError("malformed dict from the answer's process")
                    result[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
                return result
            kinds = {"l": list, "t": tuple, "s": set, "f": frozenset}
            if tag in kinds:
                return kinds[tag](decode(item, depth + 1) for item in inner)
    raise WireError("malformed value from the answer's process")


def encode(value, depth: int = 0):
    if depth > 100:
        raise ValueError("the argument is nested too deeply")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return {"b": base64.b64encode(bytes(value)).decode()}
    if callable(value) and isinstance(getattr(value, "sandboxed", None), tuple):
        return {"r": list(value.sandboxed)}
    if isinstance(value, dict):
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    for kind, tag in ((list, "l"), (tuple, "t"), (frozenset, "f"), (set, "s")):
        if isinstance(value, kind):
            return {tag: [encode(item, depth + 1) for item in value]}
    raise TypeError(
        f"only plain data (None, bool, int, float, str, bytes, list, tuple, dict, set) and functions of answer or "
        f"fixture can be passed to the answer, not a {type(value).__name__}"
    )


# ------------------------------------------------------------------------------------------- exceptions

_STAND_INS: dict = {}


def exception_class(names) -> type:
    """The local class for an answer-side exception class, from its MRO as [module, qualname] pairs."""
    base: type = Exception
    found = False
    for pair in reversed(list(names)[:16] if isinstance(names, list) else []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            continue
        module, qualname = pair
        if module == "builtins":
            builtin = getattr(builtins, qualname, None)
            if (isinstance(builtin, type) and issubclass(builtin, Exception) and issubclass(builtin, base)
                    and builtin not in REFUSED_BUILTINS):
                base, found = builtin, True
        elif NAME.match(module) and NAME.match(qualname) and qualname != "<lambda>":
            key = (module, qualname, base)
            if key not in _STAND_INS:
                _STAND_INS[key] = type(qualname.rsplit(".", 1)[-1], (base,), {"__module__": module,
                                                                           "__qualname__": qualname})
            base, found = _STAND_INS[key], True
    return base if found else RuntimeError


def remote_exception(payload, depth: int = 0) -> BaseException:
    if not isinstance(payload, dict) or depth > 3:
        return WireError("malformed error from the answer's process")
    message = str(payload.get("message", ""))[: MESSAGE_CHARS * 4]
    names = payload.get("class")
    cls = exception_class(names)
    remote_name = names[0][1] if isinstance(names, list) and names and isinstance(names[0], list) and \
        len(names[0]) == 2 and isinstance(names[0][1], str) else "Exception"
    exc = None
    if issubclass(cls, BaseExceptionGroup):
        inner = payload.get("exceptions")
        subs = [remote_exception(p, depth + 1) for p in inner[:10]] if isinstance(inner, list) else []
        subs = [s for s in subs if isinstance(s, Exception)]
        try:
            exc = cls(message, subs) if subs else None
        except Exception:
            exc = None
        if exc is None:
            cls = RuntimeError
    if exc is None:
        args = None
        try:
            args = decode(payload.get("args"))
        except (TypeError, ValueError, RecursionError):  # malformed, or unhashable where a key must be
            pass
        exc = _instantiate(cls, args, message)
        if exc is None or (cls is RuntimeError and remote_name != "RuntimeError"):
            exc = RuntimeError(f"{remote_name}: {message}" if message else remote_name)
    exc._answer_type = remote_name[:200]
    exc._answer_message = message
    exc._answer_where = payload.get("where") if isinstance(payload.get("where"), str) else None
    return exc


def _instantiate(cls: type, args, message: str):
    """``cls`` made from the answer's args, or from its message; None when neither fits its constructor."""
    attempts = [args] if isinstance(args, tuple) and len(args) <= 8 else []
    for arguments in [*attempts, (message,)]:
        try:
            return cls(*arguments)
        except Exception:
            pass
    return None


# ---------------------------------------------------------------------------------------------- proxies


def remote_function(channel: Channel, module: str, name: str, about: dict):
    """A local function standing for a function of the sandboxed answer (or fixture): calling it sends plain
    data and gets plain data back. An async function's stand-in is itself ``async def``."""

    def call(args, kwargs):
        reply = channel.request({"op": "call", "module": module, "name": name,
                                 "args": encode(tuple(args)), "kwargs": encode(dict(kwargs))})
        if "raise" in reply:
            raise remote_exception(reply["raise"])
        return decode(reply.get("value")), reply.get("awaited") is True

    if about.get("async") is True:
        async def function(*args, **kwargs):
            return call(args, kwargs)[0]
    else:
        def function(*args, **kwargs):
            value, awaited = call(args, kwargs)
            if awaited:  # it returned an awaitable, which the sandbox awaited: give the tests one too
                async def done():
                    return value

                return done()
            return value

    function.__name__ = function.__qualname__ = name
    function.__module__ = module
    function.__doc__ = about["doc"][:4000] if isinstance(about.get("doc"), str) else None
    function.signature = about["signature"][:1000] if isinstance(about.get("signature"), str) else None
    function.sandboxed = (module, name)  # passed back to the answer by name
    return function


class RemoteModule:
    """``answer`` or ``fixture``: each attribute is fetched from the sandbox when read."""

    def __init__(self, channel: Channel, name: str):
        self.__dict__.update(_channel=channel, __name__=name)

    def __getattr__(self, attr: str):
        if attr == "__all__":
            names = decode(self._channel.request({"op": "names", "module": self.__name__}).get("value"))
            # Never a test_* name: a star import must not replace the tests' own functions.
            return [n for n in names if isinstance(n, str) and not n.startswith("test")] if isinstance(names, list) else []
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        reply = self._channel.request({"op": "get", "module": self.__name__, "name": attr})
        if "raise" in reply:
            raise remote_exception(reply["raise"])
        if isinstance(reply.get("function"), dict):
            return remote_function(self._channel, self.__name__, attr, reply["function"])
        if "exception" in reply:
            return exception_class(reply["exception"])
        return decode(reply.get("value"))

    def __dir__(self):
        return self.__all__

    def __setattr__(self, attr, value):
        raise AttributeError(f"{self.__name__} lives in the sandbox: its attributes cannot be set from the tests")

    def __repr__(self) -> str:
        return f"<module {self.__name__} (in the sandbox)>"


# ---------------------------------------------------------------------------------------------- running


def where(exc: BaseException):
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.basename(frame.filename) == "test_answer.py":
            found = (frame.lineno or 0, (frame.line or "").strip())
    return found


def describe(exc: BaseException) -> str:
    """One line for a page: the assertion's message, or the exception and where it was raised."""
    if isinstance(exc, AssertionError) and str(exc):
        return one_line(str(exc))
    if isinstance(exc, MemoryError):
        return f"MemoryError (memory limit {CONFIG['memory_mb']} MB)"
    if isinstance(exc, AnswerProcessEnded):
        return one_line(str(exc))
    remote = getattr(exc, "_answer_type", None)
    if remote:
        message = exc._answer_message
        text = f"{remote}: {message}" if message else remote
        return one_line(text + (f" ({exc._answer_where})" if exc._answer_where else ""))
    place = where(exc)
    if isinstance(exc, AssertionError):
        return one_line(f"assertion failed: {place[1]} (test_answer.py line {place[0]})") if place else "assertion failed"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if place and not isinstance(exc, SyntaxError):
        text += f" (test_answer.py line {place[0]})"
    return one_line(text)


def run_tests(module, channel: Channel) -> None:
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
                asyncio.run(result)
        except BaseException as exc:
            passed, message = False, describe(exc)
        else:
            passed, message = True, ""
        if channel.dead:  # whatever the test concluded, the answer did not see it through
            report({"outcome": name, "passed": False, "message": channel.dead, "answer_ended": True})
            if channel.dead != "the answer's process ended":
                report({"error": channel.dead})
            return
        report({"outcome": name, "passed": passed, "message": message})
    report({"done": True})


def main() -> None:
    directory = CONFIG["directory"]
    channel = Channel(CONFIG["request_fd"], CONFIG["reply_fd"])
    with open(os.path.join(directory, "load.json"), encoding="utf-8") as f:
        load = json.load(f)
    try:
        reply = channel.request({"op": "load", **load})
    except AnswerProcessEnded:
        report({"answer_ended": True})
        return
    if "raise" in reply:
        what = "the check's setup code failed" if reply.get("stage") == "setup" else "the answer failed to import"
        report({"error": f"{what}: {describe(remote_exception(reply['raise']))}"})
        return
    sys.modules["answer"] = RemoteModule(channel, "answer")
    sys.modules["fixture"] = RemoteModule(channel, "fixture")
    path = os.path.join(directory, "test_answer.py")
    try:
        spec = importlib.util.spec_from_file_location("test_answer", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["test_answer"] = module
        spec.loader.exec_module(module)
    except BaseException as exc:
        if channel.dead:
            report({"answer_ended": True})
        else:
            report({"error": f"importing the tests failed: {describe(exc)}"})
        return
    run_tests(module, channel)


if __name__ == "__main__":
    try:
        main()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(0)
