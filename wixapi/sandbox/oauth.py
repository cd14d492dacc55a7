"""OAuth: the client-credentials token endpoint and Token Info (docs/wix-contract.md §2.2), and the
consent page that Connect By OAuth sends the calendar owner to (docs/wix-contract.md §1.4)."""

from __future__ import annotations

import hmac
import json
from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from .responses import json_response, oauth_error

# [U] chosen (docs/wix-contract.md §1.4, §6.3): the redirectUrl's own query parameters are kept and
# `connectionId` / `error` is appended after them.
PRESERVE_REDIRECT_QUERY = True
CONSENT_ANSWERS = {"approve", "refuse", "unsupported", "internal"}
_ERRORS = {"refuse": "reject", "unsupported": "unsupported", "internal": "internal"}


def token(sb, request: Request) -> Response:
    """POST /oauth2/token with grant_type client_credentials."""
    body = _token_body(request)
    if body is None:
        raise oauth_error(400, "invalid_request", "The body must be a JSON object")
    missing = [
        k for k in ("grant_type", "client_id", "client_secret", "instance_id") if not body.get(k)
    ]
    if missing:
        raise oauth_error(400, "invalid_request", f"Missing {', '.join(missing)}")
    if body["grant_type"] != "client_credentials":
        raise oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported")
    with sb.lock:
        secret = sb.apps.get(str(body["client_id"]))
        instance = sb.instances.get(str(body["instance_id"]))
        lifetime = sb.token_lifetime_seconds
    if secret is None or not hmac.compare_digest(secret, str(body["client_secret"])):
        raise oauth_error(401, "invalid_client", "Unknown app id or wrong app secret")
    if instance is None or instance[0] != body["client_id"]:
        raise oauth_error(400, "invalid_grant", "The app isn't installed with this instance id")
    access_token = sb.issue_token(body["client_id"], body["instance_id"])
    return json_response(
        {"access_token": access_token, "token_type": "Bearer", "expires_in": lifetime}
    )


def token_info(sb, request: Request) -> Response:
    """POST /oauth2/token-info {"token": ...}: the app, instance and site behind a token.

    [U] chosen: an unknown or expired token is answered as RFC 7662 introspection answers
    one, `{"active": false}` with 200, not as an error.
    """
    body = _token_body(request)
    if body is None or not isinstance(body.get("token"), str) or not body["token"]:
        raise oauth_error(400, "invalid_request", "Missing token")
    with sb.lock:
        info = sb.tokens.get(body["token"])
        if info is not None and info.expires_at <= sb.clock():
            info = None
        account_id = sb.sites[info.site_id].account_id if info is not None else None
    if info is None:
        return json_response({"active": False})
    return json_response(
        {
            "active": True,
            "subjectType": "APP",
            "subjectId": info.app_id,
            "clientId": info.app_id,
            "instanceId": info.instance_id,
            "siteId": info.site_id,
            "accountId": account_id,
        }
    )


def _token_body(request: Request) -> dict | None:
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def consent_page(sb, request: Request, request_id: str) -> Response:
    """GET the consent page: provider, schedule, an email field, approve/refuse buttons."""
    with sb.lock:
        consent = sb.consents.get(request_id)
        if consent is None or consent.used:
            return _gone()
        site = sb.sites[consent.site_id]
        provider = site.provider_records[consent.provider_id]
        schedule = site.schedules[consent.schedule_id]
    email = ".".join(schedule.name.lower().split()) + "@example.com"
    html = CONSENT_HTML.format(
        provider=escape(provider.name),
        schedule=escape(schedule.name),
        email=escape(email),
        action=escape(request.path),
    )
    return Response(html, mimetype="text/html")


def consent_answer(sb, request: Request, request_id: str) -> Response:
    """POST an answer (form field or query `action`); redirect to the portal's redirectUrl."""
    answer = request.form.get("action") or request.args.get("action") or "approve"
    if answer not in CONSENT_ANSWERS:
        return Response(f"Unknown action {escape(answer)}", status=400, mimetype="text/plain")
    with sb.lock:
        consent = sb.consents.get(request_id)
        if consent is None or consent.used:
            return _gone()
        consent.used = True  # a consent request can be answered once
        if answer == "approve":
            email = request.form.get("email") or request.args.get("email") or "owner@example.com"
            conn_id = sb.connect(
                consent.site_id,
                consent.schedule_id,
                consent.provider_id,
                email=email,
                app_id=consent.app_id,
            )
            params = {"connectionId": conn_id}
        else:
            params = {"error": _ERRORS[answer]}
    return redirect(_with_params(consent.redirect_url, params), code=302)


def _with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) if PRESERVE_REDIRECT_QUERY else []
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _gone() -> Response:
    return Response(
        "<!doctype html><title>Expired</title><p>This consent request was already used or"
        " doesn't exist.</p>",
        status=410,
        mimetype="text/html",
    )


CONSENT_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connect {provider}</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto}}
button{{margin:.25rem .5rem .25rem 0;padding:.4rem 1rem}}</style></head>
<body>
<h1>Connect your {provider} calendar</h1>
<p>Wix Bookings (sandbox) asks to sync the calendar of <strong>{schedule}</strong>
with your {provider} account.</p>
<form method="post" action="{action}">
  <label>Account email <input type="email" name="email" value="{email}"></label>
  <p>
    <button type="submit" name="action" value="approve">Approve</button>
    <button type="submit" name="action" value="refuse">Refuse</button>
  </p>
  <details><summary>Simulate a failure</summary>
    <button type="submit" name="action" value="unsupported">Unsupported account</button>
    <button type="submit" name="action" value="internal">Internal error</button>
  </details>
</form>
</body></html>
"""
