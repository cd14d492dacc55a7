from rest_framework.pagination import CursorPagination


class CursorPage(CursorPagination):
    """Cursor pages over the primary key: stable under inserts, constant cost at any depth."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
