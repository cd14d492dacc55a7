"""Logging handlers."""

import logging
import sys


class ConsoleHandler(logging.StreamHandler):
    """A stderr handler that looks up `sys.stderr` when it writes.

    Logging is configured once at start-up; test runners and daemonisers swap stderr
    afterwards, and a handler holding the old stream writes to a closed file.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass
