"""Request body parsers: malformed input is a 400 in the error shape, never a 500."""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, also refusing bodies nested too deeply for Python's decoder.

    `json` recurses once per nesting level, so a body of 100,000 brackets raises
    RecursionError, which DRF's parser (catching ValueError only) lets through as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
