"""``python -m prosima.cli``: the same command line as ``prosima``."""

from prosima.cli import app

app()
