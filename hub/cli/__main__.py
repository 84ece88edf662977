"""``python -m hub.cli``: the same command line as ``srhub``."""

from hub.cli.root import main

main(prog_name="srhub")
