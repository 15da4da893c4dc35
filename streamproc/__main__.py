"""``python -m streamproc``: the same command line as ``streamproc``."""

from streamproc.cli import main

main()
