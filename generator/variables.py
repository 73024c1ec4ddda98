"""${VAR} and ${VAR:-default} in benchmark.yaml, expanded from the environment (config, and head_start before it).

Stdlib only, so `bench run` can read the file the same way before its heavy imports.
"""

from __future__ import annotations

import re
from typing import Any

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def expand(text: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """Expand ${VAR} and ${VAR:-default}, and turn the escape $${ into a literal ${; return the text and the
    names of unset variables without default."""
    missing: list[str] = []

    def sub(m: re.Match) -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                missing.append(name)
                return ""
            return default
        return value

    return _VAR.sub(sub, text), missing


def expand_tree(node: Any, env: dict[str, str], path: tuple, missing: list[tuple[tuple, str]]) -> Any:
    """Every string in a parsed YAML tree expanded; each unset variable is added to ``missing`` with its path."""
    if isinstance(node, str):
        value, unset = expand(node, env)
        missing.extend((path, name) for name in unset)
        return value
    if isinstance(node, dict):
        return {k: expand_tree(v, env, path + (k,), missing) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_tree(v, env, path + (i,), missing) for i, v in enumerate(node)]
    return node


def without_empty_credentials(headers: dict[str, str]) -> dict[str, str]:
    """Headers without the empty ones: "Bearer ${TOKEN:-}" with no token set sends no header rather than an
    empty credential."""
    return {k: v for k, v in headers.items() if v.strip() and v.strip().lower() not in ("bearer", "basic")}
