"""Ctrl-C and SIGTERM as ordinary, clean exits: the frame in flight is dropped, the finished ones are safe.

Frames and manifests are written atomically, so stopping between any two Python bytecodes loses at
most the frame being rendered. This module only turns the signals into one exception type that
carries the exit status (130 for SIGINT, 143 for SIGTERM) and the command that resumes the work.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from dreamreel.errors import DreamreelError


class Interrupted(DreamreelError):
    """The user (or the system) stopped a render; finished work is kept."""


class _Terminated(BaseException):
    """Raised by the SIGTERM handler; BaseException so that no `except Exception` swallows it."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


@contextmanager
def resumable(resume_command: str) -> Iterator[None]:
    """Run a render; on Ctrl-C, SIGTERM or a DreamreelError mid-render, say how to resume."""
    previous = signal.getsignal(signal.SIGTERM)
    installed = False
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
        installed = True
    except ValueError:  # not the main thread (e.g. called from a worker): leave SIGTERM alone
        pass
    try:
        yield
    except Interrupted:
        raise
    except DreamreelError as exc:  # a full disk, a read-only folder, a broken decode: work so far is kept
        raise DreamreelError(
            f"{exc}; finished work is kept. Resume with: {resume_command}", exit_code=exc.exit_code
        ) from exc
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; finished work is saved. Resume with: {resume_command}", exit_code=130
        ) from None
    except _Terminated:
        raise Interrupted(
            f"terminated; finished work is saved. Resume with: {resume_command}", exit_code=143
        ) from None
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)
