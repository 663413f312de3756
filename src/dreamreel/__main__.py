"""``python -m dreamreel``: the same as the ``dreamreel`` command."""

from dreamreel.cli.app import run

run()
