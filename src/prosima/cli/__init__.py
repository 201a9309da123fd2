"""The ``prosima`` command line: a root that registers one group (or command) per task.

Commands parse their options, call ``prosima.app`` and render its results (``cli.output``); errors
become messages and exit codes in one place (``cli.errors``): 0 success, 1 a negative verdict,
2 refused input. Heavy libraries are imported inside commands so that ``prosima --help`` stays fast.
"""

from prosima.cli.root import app

__all__ = ["app"]
