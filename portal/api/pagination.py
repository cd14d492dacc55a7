from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

from common.ids import MAX_ID


class CursorPage(CursorPagination):
    """Cursor pages over the primary key: stable under inserts, constant cost at any depth."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        # DRF ignores a page_size it cannot read and serves the default: a client asking for
        # `page_size=abc` or 0 would not learn its request was wrong.
        asked = request.query_params.get(self.page_size_query_param)
        if asked is not None:
            try:
                size = int(asked)
            except ValueError:
                size = 0
            if size < 1:
                message = f"A whole number from 1 to {self.max_page_size}."
                raise ValidationError({self.page_size_query_param: [message]})
        return super().get_page_size(request)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        # A cursor's position is an id of the page's edge; DRF passes any string on to the
        # query, where a forged one ("abc", or beyond 64 bits) fails as a server error.
        if cursor is not None and cursor.position is not None:
            try:
                position = int(cursor.position)
            except ValueError:
                raise NotFound(self.invalid_cursor_message) from None
            if not 0 <= position <= MAX_ID:
                raise NotFound(self.invalid_cursor_message)
            cursor = cursor._replace(position=str(position))
        return cursor
