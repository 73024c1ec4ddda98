"""`python -m generator` and the `bench` command: the first model loads asked for (head_start), then the CLI."""

import sys

from . import head_start


def main() -> None:
    head_start.begin(sys.argv[1:])
    from .cli import entry  # the imports take ~0.25 s: a model can be loading meanwhile

    entry()


if __name__ == "__main__":
    main()
