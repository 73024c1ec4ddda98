"""MkDocs hook: re-render docs/ from the answer cache on every build, and take site_name and nav from benchmark.yaml.

Registered in mkdocs.yml (`hooks: [generator/mkdocs_hook.py]`). It reads benchmark.yaml beside mkdocs.yml
and the cache in $BENCH_CACHE_DIR or .cache/bench (relative to mkdocs.yml), never calls a model, and writes
only files whose content changed, so `mkdocs serve` does not rebuild in a loop. A broken benchmark.yaml,
cache or results.json fails the build with its message and no traceback.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError

from generator import config as bench_config
from generator.cache import DEFAULT_DIR, AnswerCache
from generator.errors import BenchError
from generator.evaluate import reviews_path
from generator.render import html_text, nav, render
from generator.safety import Redactor

log = logging.getLogger("mkdocs.hooks.bench")


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    root = Path(config.config_file_path).resolve().parent
    cache_dir = os.environ.get("BENCH_CACHE_DIR") or str(root / DEFAULT_DIR)
    try:
        bench = bench_config.load(root / "benchmark.yaml")
        store = AnswerCache.open(cache_dir, redact=Redactor.for_benchmark(bench))  # as `bench render` opens it
        try:
            # extra.notice (the demo sets it) is shown by the theme and put at the top of every generated page.
            changed = render(bench, store, config.docs_dir, site_src=root / "site_src",
                             banner=config.extra.get("notice"))
        finally:
            store.close()
    except BenchError as e:
        raise PluginError(str(e)) from None
    except OSError as e:  # docs_dir or the cache not writable, a file where a folder should be...
        raise PluginError(f"cannot render {config.docs_dir}: {e}") from None
    log.info(f"bench: rendered {config.docs_dir} from {cache_dir}: {len(changed)} file(s) changed")
    # Themes insert site_name and nav titles into HTML unescaped.
    config.site_name = html_text(bench.title)
    if bench.description:
        config.site_description = html_text(bench.description)
    config.nav = nav(bench, config.docs_dir)
    reviews = reviews_path(bench)
    if reviews.exists() and str(reviews) not in config.watch:
        config.watch.append(str(reviews))
    return config
