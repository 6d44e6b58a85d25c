"""The errors the package raises on purpose, in two kinds that callers treat differently.

* :class:`UsageError` -- a bad call: an unknown option value, a missing model, an output folder
  that cannot be used. Raised at once, before any file is processed; a batch run never turns it
  into per-file failures. The command line exits with code 2.
* :class:`InputError` -- a bad input: an unreadable, damaged or oversized image or video. A batch
  run records it as that file's failure and goes on (exit code 1 at the end).

Both are ``ValueError`` subclasses, so code written against the earlier plain ``ValueError`` still
catches them.
"""
from __future__ import annotations


class FeatherFaceError(Exception):
    """Base of the package's own errors."""


class UsageError(FeatherFaceError, ValueError):
    """A bad call (options, model, output folder): raised before any work, never per file."""


class InputError(FeatherFaceError, ValueError):
    """A bad input file or image: recorded as that file's failure in a batch run."""


class OutOfSpace(FeatherFaceError, OSError):
    """The output's disk is full: the run stops (every further file would fail the same way) and
    can be resumed once space is freed."""


class NotAnImage(InputError):
    """Data that no image reader recognises."""


class ImageTooLarge(InputError):
    """An image whose header declares more pixels than the caller allows (refused before decoding)."""
