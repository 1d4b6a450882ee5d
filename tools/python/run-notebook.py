#!/usr/bin/env python3
"""Runs a notebook top to bottom with nbclient (as CI does) and writes the
executed copy next to the output path given; fails on the first cell that raises.

    python3 tools/python/run-notebook.py examples/fill-a-skewed-table.ipynb target/notebook.ipynb
"""

import sys

import nbformat
from nbclient import NotebookClient


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, executed = sys.argv[1], sys.argv[2]
    nb = nbformat.read(source, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    nbformat.write(nb, executed)
    print(f"{source}: {len(nb.cells)} cells ran; executed copy in {executed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
