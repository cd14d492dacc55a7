"""Query Schedules (docs/wix-contract.md §4) and Query Sites (docs/wix-contract.md §5), plus cursor
and filter helpers."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from werkzeug.wrappers import Request, Response

from . import shapes
from .responses import json_response, validation_error, violation

SCHEDULES_DEFAULT_LIMIT = 50  # docs/wix-contract.md §4
SCHEDULES_MAX_LIMIT = 100  # [U] chosen: standard Wix cursor paging maximum
SCHEDULE_FILTER_FIELDS = ("id", "externalId", "appId", "status")  # docs/wix-contract.md §4
SITES_DEFAULT_LIMIT = 50  # [U] chosen; docs/wix-contract.md §5 only gives the maximum
SITES_MAX_LIMIT = 100  # docs/wix-contract.md §5
SITE_FILTER_FIELDS = (
    "id",
    "name",
    "published",
    "premium",
    "editorType",
    "namespace",
    "domainConnected",
)
SITE_SORT_FIELDS = {"displayName", "createdDate", "updatedDate"}


# cursors ----------------------------------------------------------------------------------
def encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, field: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(state, dict) and isinstance(state.get("o"), int):
            return state
    except (ValueError, binascii.Error):
        pass
    raise validation_error([violation(field, "invalid cursor")])


def parse_limit(value: Any, field: str, default: int, maximum: int) -> int:
    if value is None:
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = -1
    if not 1 <= limit <= maximum or isinstance(value, bool):
        raise validation_error([violation(field, f"must be between 1 and {maximum}")])
    return limit


# filters ----------------------------------------------------------------------------------
def _condition(value: Any, ops: set[str], field: str) -> tuple[str, Any]:
    if not isinstance(value, dict):
        return "$eq", value
    if len(value) != 1 or next(iter(value)) not in ops:
        raise validation_error([violation(f"query.filter.{field}", f"operators: {sorted(ops)}")])
    op, operand = next(iter(value.items()))
    if op in ("$in", "$hasSome") and not isinstance(operand, list):
        raise validation_error([violation(f"query.filter.{field}", f"{op} needs a list")])
    return op, operand


def compile_filter(filter_: Any, fields, ops: set[str]) -> list[tuple[str, str, Any]]:
    """Return [(json field, op, operand)] for a flat Wix filter; raise 400 on anything else."""
    if filter_ is None:
        return []
    if not isinstance(filter_, dict):
        raise validation_error([violation("query.filter", "must be an object")])
    conditions = []
    for name, value in filter_.items():
        if name not in fields:
            raise validation_error([violation(f"query.filter.{name}", "field is not filterable")])
        conditions.append((name, *_condition(value, ops, name)))
    return conditions


def matches(data: dict[str, Any], conditions) -> bool:
    for name, op, operand in conditions:
        value = data.get(name)
        if op == "$eq" and value != operand:
            return False
        if op == "$ne" and value == operand:
            return False
        if op == "$in" and value not in operand:
            return False
        if op == "$exists" and (value is not None) != bool(operand):
            return False
        if op == "$startsWith" and not str(value or "").startswith(str(operand)):
            return False
    return True


def read_body(request: Request) -> dict[str, Any]:
    if not request.get_data():
        return {}
    try:
        body = json.loads(request.get_data())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise validation_error([violation("body", "must be a JSON object")])
    return body


def _page(items: list, offset: int, limit: int, state: dict[str, Any], prev: bool):
    page = items[offset : offset + limit]
    has_next = offset + limit < len(items)
    cursors = {}
    if has_next:
        cursors["next"] = encode_cursor({**state, "o": offset + limit})
    if prev and offset > 0:
        cursors["prev"] = encode_cursor({**state, "o": max(0, offset - limit)})
    return page, {"count": len(page), "cursors": cursors, "hasNext": has_next}


# endpoints --------------------------------------------------------------------------------
def query_schedules(sb, request: Request, caller) -> Response:
    """POST /calendar/v3/schedules/query: filter id/externalId/appId/status ($eq, $in)."""
    body = read_body(request)
    query = body.get("query") or {}
    fields = body.get("fields") or []
    if not isinstance(fields, list) or len(fields) > 1:
        raise validation_error([violation("fields", "at most one of PI_FIELDS, OWN_PI_FIELDS")])
    if any(f not in ("PI_FIELDS", "OWN_PI_FIELDS") for f in fields):
        raise validation_error([violation("fields", "must be PI_FIELDS or OWN_PI_FIELDS")])
    paging = query.get("cursorPaging") or {}
    cursor = paging.get("cursor")
    if cursor:
        # Standard Wix rule (docs/wix-contract.md §4): the cursor replaces filter and sort.
        state = decode_cursor(cursor, "query.cursorPaging.cursor")
    else:
        state = {"f": query.get("filter"), "l": SCHEDULES_DEFAULT_LIMIT, "o": 0}
    limit = parse_limit(
        paging.get("limit", state.get("l")),
        "query.cursorPaging.limit",
        SCHEDULES_DEFAULT_LIMIT,
        SCHEDULES_MAX_LIMIT,
    )
    state["l"] = limit
    conditions = compile_filter(state["f"], SCHEDULE_FILTER_FIELDS, {"$eq", "$in"})
    if not any(name == "status" for name, _, _ in conditions):
        # docs/wix-contract.md §4 default: ACTIVE only
        conditions.append(("status", "$eq", "ACTIVE"))
    with sb.lock:
        items = [shapes.schedule_json(s) for s in caller.site.schedules.values()]
    items = [item for item in items if matches(item, conditions)]
    page, metadata = _page(items, state["o"], limit, state, prev=True)
    return json_response({"schedules": page, "pagingMetadata": metadata})


def query_sites(sb, request: Request, account_id: str) -> Response:
    """POST /site-list/v2/sites/query for the API key's account."""
    body = read_body(request)
    query = body.get("query") or {}
    paging = query.get("cursorPaging") or {}
    cursor = paging.get("cursor")
    if cursor:
        state = decode_cursor(cursor, "query.cursorPaging.cursor")
    else:
        state = {"f": query.get("filter"), "s": query.get("sort") or [], "o": 0}
    limit = parse_limit(
        paging.get("limit", state.get("l")),
        "query.cursorPaging.limit",
        SITES_DEFAULT_LIMIT,
        SITES_MAX_LIMIT,
    )
    state["l"] = limit
    conditions = compile_filter(
        state["f"], SITE_FILTER_FIELDS, {"$eq", "$ne", "$in", "$exists", "$startsWith"}
    )
    with sb.lock:
        items = [shapes.site_json(s) for s in sb.sites.values() if s.account_id == account_id]
    items = [item for item in items if matches(item, conditions)]
    for rule in reversed(state["s"] if isinstance(state["s"], list) else []):
        name = rule.get("fieldName") if isinstance(rule, dict) else None
        if name not in SITE_SORT_FIELDS:
            raise validation_error([violation("query.sort.fieldName", "not sortable")])
        items.sort(key=lambda item, n=name: item[n], reverse=rule.get("order") == "DESC")
    page, metadata = _page(items, state["o"], limit, state, prev=False)
    # [U] chosen (docs/wix-contract.md §5): metadata mirrors pagingMetadata without `prev`.
    return json_response({"sites": page, "metadata": metadata})
