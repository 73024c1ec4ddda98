"""benchmark.yaml as written, before validation: YAML that refuses a key given twice, ${VAR} and
${VAR:-default} expanded from the environment, empty credentials dropped.

Stdlib and yaml only: config reads the file through these, and head_start reads it the same way before
`bench run`'s heavy imports.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A safe loader (libyaml's when present) that refuses a key given twice in one mapping (YAML allows it)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice (first on line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

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
