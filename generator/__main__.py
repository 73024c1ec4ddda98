"""`python -m generator` is the `bench` command."""

from .cli import entry

entry()
