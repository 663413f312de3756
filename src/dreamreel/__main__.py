"""``python -m dreamreel``: the same as the ``dreamreel`` command."""

from dreamreel.cli import main

main()
