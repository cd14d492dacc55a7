"""Wix error bodies and statuses become the documented exception types (docs/wix-contract.md §3)."""

import pytest

from wixapi import errors


def app_error(code: str, message: str = "Short text") -> dict:
    return {"message": message, "details": {"applicationError": {"code": code, "description": "d"}}}


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (401, app_error("BAD_CREDENTIALS"), errors.WixApiError, "BAD_CREDENTIALS"),
        (
            403,
            app_error("PREMIUM_FEATURE_NOT_ENABLED"),
            errors.WixApiError,
            "PREMIUM_FEATURE_NOT_ENABLED",
        ),
        (
            428,
            app_error("NOT_SUPPORTED_BY_PROVIDER"),
            errors.WixApiError,
            "NOT_SUPPORTED_BY_PROVIDER",
        ),
        (
            428,
            app_error("CONNECTION_NOT_CONNECTED"),
            errors.WixApiError,
            "CONNECTION_NOT_CONNECTED",
        ),
        (
            428,
            app_error("CONNECTION_ALREADY_DISCONNECTED"),
            errors.WixApiError,
            "CONNECTION_ALREADY_DISCONNECTED",
        ),
        (401, {"message": "bad token"}, errors.WixAuthError, "UNAUTHENTICATED"),
        (403, {}, errors.WixAuthError, "PERMISSION_DENIED"),
        (404, {}, errors.WixNotFound, "NOT_FOUND"),
        (409, {}, errors.WixApiError, "ALREADY_EXISTS"),
        (429, {}, errors.WixRateLimited, "RESOURCE_EXHAUSTED"),
        (500, None, errors.WixUnavailable, "INTERNAL"),
        (501, None, errors.WixApiError, "UNIMPLEMENTED"),
        (503, None, errors.WixUnavailable, "UNAVAILABLE"),
        (504, None, errors.WixUnavailable, "DEADLINE_EXCEEDED"),
    ],
)
def test_status_and_body_map_to_typed_error(status, body, kind, code):
    error = errors.error_for_status(status, errors.parse_error_body(body), request_id="rid-1")

    assert type(error) is kind
    assert (error.status, error.code, error.request_id) == (status, code, "rid-1")


def test_calendar_account_codes_are_not_auth_errors():
    for code in ("BAD_CREDENTIALS", "PREMIUM_FEATURE_NOT_ENABLED"):
        error = errors.error_for_status(
            401, errors.parse_error_body(app_error(code)), request_id=None
        )
        assert not isinstance(error, errors.WixAuthError)


def test_validation_error_keeps_field_violations():
    body = {
        "message": "bad window",
        "details": {
            "validationError": {
                "fieldViolations": [
                    {
                        "field": "from",
                        "description": "must not be empty",
                        "violatedRule": "REQUIRED_FIELD",
                    }
                ]
            }
        },
    }

    error = errors.error_for_status(400, errors.parse_error_body(body), request_id="r")

    assert isinstance(error, errors.WixValidationError)
    assert error.field_violations == (
        errors.FieldViolation("from", "must not be empty", "REQUIRED_FIELD"),
    )
    assert str(error) == "Wix 400 INVALID_ARGUMENT: bad window (request id r)"


def test_oauth_error_body_is_read():
    body = errors.parse_error_body({"error": "invalid_client", "error_description": "unknown app"})

    assert (body.code, body.message) == ("INVALID_CLIENT", "unknown app")


def test_message_is_wix_message_and_request_id():
    error = errors.error_for_status(
        428,
        errors.parse_error_body(app_error("NOT_SUPPORTED_BY_PROVIDER", "No OAuth")),
        request_id="x1",
    )

    assert str(error) == "Wix 428 NOT_SUPPORTED_BY_PROVIDER: No OAuth (request id x1)"
    assert error.as_dict() == {
        "status": 428,
        "code": "NOT_SUPPORTED_BY_PROVIDER",
        "message": "No OAuth",
        "requestId": "x1",
    }
