"""Public pages: where a calendar owner lands after Wix's OAuth consent."""

from __future__ import annotations

from urllib.parse import urljoin

from django.http import HttpRequest
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .services.connect import oauth_connect_complete
from .services.errors import ReturnRefused


def oauth_return_url(origin: HttpRequest | str, state: str) -> str:
    """The absolute URL of `oauth_return` for `state`, on the host the request `origin` came
    to (or under `origin`, a base URL such as "https://portal.example.com", for commands).

    The admin, the control room, the API and `manage.py connection reconnect-link` give it
    to the connect verbs as their `return_url` (`partial(oauth_return_url, request)`).
    """
    path = reverse("oauth-return", args=[state])
    if isinstance(origin, str):
        return urljoin(origin, path)
    return origin.build_absolute_uri(path)


@never_cache
@require_GET
def oauth_return(request, state: str):
    """Finish a connect request with Wix's `connectionId` or `error`; say how it went."""
    try:
        outcome = oauth_connect_complete(
            state,
            connection_id=request.GET.get("connectionId") or None,
            error=request.GET.get("error") or None,
        )
    except ReturnRefused as refused:
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
