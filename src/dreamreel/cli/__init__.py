"""The command line: the click app (app.py) and the command modules that register on it."""

from dreamreel.cli import animation, video  # noqa: F401  (they register their commands on `cli`)
from dreamreel.cli.app import cli, main

__all__ = ["cli", "main"]
