"""Public pages: where a calendar owner lands after Wix's OAuth consent."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import operations


@never_cache
@require_GET
def oauth_return(request, state: str):
    """Finish a connect request with Wix's `connectionId` or `error`; say how it went."""
    try:
        outcome = operations.complete_oauth_connect(
            state,
            connection_id=request.GET.get("connectionId") or None,
            error=request.GET.get("error") or None,
        )
    except operations.ReturnRefused as refused:
        return render(
            request,
            "connections/oauth_return.html",
            {
                "ok": False,
                "headline": "This link cannot be used",
                "message": str(refused),
                "advice": "Ask the person who sent it for a new link.",
            },
            status=400,
        )
    connect = outcome.request
    return render(
        request,
        "connections/oauth_return.html",
        {
            "ok": outcome.connected,
            "headline": "Calendar connected" if outcome.connected else "Calendar not connected",
            "message": outcome.message,
            "advice": "You can close this window."
            if outcome.connected
            else "You can close this window and ask for a new link to try again.",
            "site": connect.tenant.name,
            "provider": str(connect.provider),
        },
    )
