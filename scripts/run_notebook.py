#!/usr/bin/env python3
"""Executes a notebook headless (nbclient, the engine under nbconvert and
papermill) and writes the executed copy. Fails if any cell raises.

    run_notebook.py NOTEBOOK OUTPUT   (the notebook reads $ORDERSTREAM_DATA)
"""
import sys

import nbformat
from nbclient import NotebookClient


def main():
    source, target = sys.argv[1], sys.argv[2]
    notebook = nbformat.read(source, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    nbformat.write(notebook, target)
    print(f"executed {source} -> {target}")


if __name__ == "__main__":
    main()
