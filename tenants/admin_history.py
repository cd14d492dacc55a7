"""History pages (django-simple-history) that give nothing away about objects out of reach."""

from __future__ import annotations

from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import Http404

from common.ids import MAX_ID


class HistoryOutOfReachIs404:
    """Mixin for a SimpleHistoryAdmin: its history pages answer 404 alike for an object that
    does not exist, one of a tenant the user may not see, and an id that is not an id.

    Without it an object of another tenant answers 403 and a missing one 404, which tells
    them apart; and a non-numeric id raises a ValueError (a 500).
    """

    def history_view(self, request, object_id, extra_context=None):
        self._in_reach_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._in_reach_or_404(request, object_id)
        _id_or_404(version_id)
        return super().history_form_view(request, object_id, version_id, extra_context)

    def _in_reach_or_404(self, request, object_id) -> None:
        try:
            pk = self.model._meta.pk.to_python(unquote(object_id))
        except ValidationError:
            raise Http404 from None
        if isinstance(pk, int):
            _id_or_404(pk)
        obj = self.get_queryset(request).filter(pk=pk).first()
        if obj is None:
            # Superusers may still read a deleted object's history; nobody else learns of it.
            if request.user.is_active and request.user.is_superuser:
                return
            raise Http404
        if not self.has_view_permission(request, obj):
            raise Http404


def _id_or_404(value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Http404 from None
    if not 0 < number <= MAX_ID:
        raise Http404
    return number
