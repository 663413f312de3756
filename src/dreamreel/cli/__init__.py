"""The command line: the click app (app.py), its option groups (options.py) and the command modules
that register on it. Only this layer prints."""

from dreamreel.cli import animate, films, runs, serve, stills  # noqa: F401  (they register their commands on `cli`)
from dreamreel.cli.app import cli, main, run

__all__ = ["cli", "main", "run"]
