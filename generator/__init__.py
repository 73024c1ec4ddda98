"""big-brain-bench: benchmark.yaml → cached model answers → evidence and verdicts → a MkDocs Material site.

Stages, one module each: config → plan → run → evaluate → decide → render (→ mkdocs_hook for the site).
"""

__version__ = "0.1.0"
