"""The one exception a caller needs: input the engine cannot annotate, or a missing bundle."""

from __future__ import annotations


class AnnotationError(Exception):
    """A user-caused failure; the message is one line and, for bad input, names the line."""
