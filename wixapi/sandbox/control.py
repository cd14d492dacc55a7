"""Out-of-band control API under /_sandbox/ for the demo and benchmarks (no auth: the
sandbox only listens where its runner puts it). Mirrors the Python API of `Sandbox`."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from .responses import json_response


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _guarded(view):
    def wrapper(sb, request: Request, **values) -> Response:
        try:
            return view(sb, request, **values)
        except KeyError as error:
            return json_response({"message": f"not found: {error}"}, 404)
        except (ValueError, TypeError) as error:
            return json_response({"message": str(error)}, 400)

    return wrapper


@_guarded
def health(sb, request: Request) -> Response:
    with sb.lock:
        return json_response({"ok": True, "sites": len(sb.sites)})


@_guarded
def faults(sb, request: Request) -> Response:
    """{siteId?, clear?, latency? (s), rateLimit?{times, retryAfter}, serverError?{times,
    status}, stall?{seconds, times}, malformedJson?{times}, failProviderIds?, restoreProviderIds?}.
    Without siteId only `latency` (the default for every site) and `clear` (all sites) apply."""
    body = _body(request)
    site_id = body.get("siteId")
    if site_id is None:
        if body.get("clear"):
            sb.clear_faults()
        if "latency" in body:
            sb.default_latency = float(body["latency"] or 0)
        return json_response({"ok": True})
    sb.site(site_id)  # 404 for an unknown site
    f = sb.faults(site_id)
    if body.get("clear"):
        f.clear()
    if "latency" in body:
        f.latency(None if body["latency"] is None else float(body["latency"]))
    if "rateLimit" in body:
        f.rate_limit(int(body["rateLimit"].get("times", 1)), body["rateLimit"].get("retryAfter", 1))
    if "serverError" in body:
        spec = body["serverError"]
        f.server_error(int(spec.get("times", 1)), int(spec.get("status", 500)))
    if "stall" in body:
        f.stall(float(body["stall"]["seconds"]), int(body["stall"].get("times", 1)))
    if "malformedJson" in body:
        f.malformed_json(int(body["malformedJson"].get("times", 1)))
    for provider_id in body.get("failProviderIds", []):
        f.fail_provider(provider_id)
    for provider_id in body.get("restoreProviderIds", []):
        f.restore_provider(provider_id)
    return json_response({"ok": True})


@_guarded
def change_connection(sb, request: Request) -> Response:
    """{siteId, connectionId, action: error|status|disconnect|remove|syncConfig, ...}:
    a change made on Wix's side, which the portal only learns by polling."""
    body = _body(request)
    site_id, conn_id, action = body["siteId"], body["connectionId"], body["action"]
    if action == "error":
        sb.set_connection_error(site_id, conn_id, body.get("errorReason", "TOKEN_REVOKED"))
    elif action == "status":
        sb.set_connection_status(site_id, conn_id, body["status"])
    elif action == "disconnect":
        sb.disconnect_on_wix(site_id, conn_id)
    elif action == "remove":
        sb.remove_connection(site_id, conn_id)
        return json_response({"ok": True})
    elif action == "syncConfig":
        sb.set_sync_config(site_id, conn_id, body["syncConfig"])
    else:
        raise ValueError(f"unknown action {action!r}")
    return json_response({"connection": sb.connection_json(site_id, conn_id)})


@_guarded
def count_requests(sb, request: Request) -> Response:
    args = request.args
    count = sb.count_requests(args.get("siteId"), path=args.get("path"), method=args.get("method"))
    return json_response({"count": count})


@_guarded
def reset_requests(sb, request: Request) -> Response:
    sb.reset_requests()
    return json_response({"ok": True})


@_guarded
def revoke_tokens(sb, request: Request) -> Response:
    """{siteId?, lifetimeSeconds?}: forget issued tokens; optionally change new tokens' life."""
    body = _body(request)
    if "lifetimeSeconds" in body:
        sb.token_lifetime_seconds = int(body["lifetimeSeconds"])
    sb.revoke_access_tokens(body.get("siteId"))
    return json_response({"ok": True})


ROUTES = (
    ("GET", "/_sandbox/health", health),
    ("POST", "/_sandbox/faults", faults),
    ("POST", "/_sandbox/connections", change_connection),
    ("GET", "/_sandbox/requests/count", count_requests),
    ("POST", "/_sandbox/reset-requests", reset_requests),
    ("POST", "/_sandbox/revoke-tokens", revoke_tokens),
)
