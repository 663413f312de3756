"""The one exception type users see: a clear, single-line message and exit status 2."""

from __future__ import annotations


class DreamreelError(Exception):
    """Bad input or an unusable environment, explained in one line.

    The CLI prints ``error: <message>`` and exits with ``exit_code`` (2 unless a caller
    has a more specific status), without a traceback unless ``--debug`` is given.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
