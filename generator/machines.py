"""Where a model runs: its host as the ollama client reads it, and the machine behind the host.

Stdlib only: `bench run` reads these before its heavy imports (head_start), and config and run use the same
functions, so both see the same hosts and the same machines.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections import defaultdict
from typing import Protocol, TypeVar
from urllib.parse import urlsplit


def ollama_host(text: str) -> str:
    """A host as the ollama client reads it (ollama-python _client.py _parse_host), or ValueError.

    ``localhost:11434`` and ``0.0.0.0:11434`` (how OLLAMA_HOST is often set) are accepted; a scheme-less host
    means http and port 11434. ``user:password@`` is refused: the client drops it, so it would never be sent.
    """
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "http", text
    if scheme not in ("http", "https") or not rest or re.search(r"\s", rest):
        raise ValueError(f"expected a host like http://host:11434 or host:11434, received {text!r}")
    if "@" in rest.split("/", 1)[0]:
        raise ValueError("a user:password@ in the host is dropped by the ollama client and would never be sent; "
                         "use headers: {Authorization: ...} instead")
    try:
        split = urlsplit(f"{scheme}://{rest}")
        port = split.port or (11434 if not sep else 443 if scheme == "https" else 80)
    except ValueError as e:
        raise ValueError(f"expected a host like http://host:11434, received {text!r} ({e})") from None
    host = split.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    path = split.path.strip("/")
    return f"{scheme}://{host}:{port}" + (f"/{path}" if path else "")


class Placed(Protocol):
    """What grouping needs of a model: its host and its declared machine."""

    host: str
    machine: str | None


M = TypeVar("M", bound=Placed)


def machine_of(model: Placed) -> str:
    """The machine a model runs on: its ``machine:`` key, else the address its host resolves to."""
    if model.machine:
        return f"machine {model.machine}"
    name = urlsplit(model.host).hostname or "localhost"
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)}
    except OSError:
        return f"host {name}"  # unresolvable: the probe will say so

    def local(address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%")[0])
        return ip.is_loopback or ip.is_unspecified  # 0.0.0.0 reaches this machine too

    if addresses and all(local(a) for a in addresses):
        return "this machine"
    return f"address {min(addresses)}"


def group_by_machine(models: list[M]) -> dict[str, list[M]]:
    """Models by the machine they run on, each machine's models host by host in the order of benchmark.yaml.
    A host counts as the machine of its first model (a later model on it without machine: joins that one)."""
    first_seen: dict[str, int] = {}
    for i, model in enumerate(models):
        first_seen.setdefault(model.host, i)
    machines: dict[str, list[M]] = defaultdict(list)
    host_machine: dict[str, str] = {}
    for model in sorted(models, key=lambda m: first_seen[m.host]):
        key = f"machine {model.machine}" if model.machine else host_machine.get(model.host) or machine_of(model)
        host_machine.setdefault(model.host, key)
        machines[key].append(model)
    return dict(machines)
