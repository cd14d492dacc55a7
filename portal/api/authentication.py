"""API authentication: knox tokens, honoured only while their user may use the API."""

from __future__ import annotations

from knox import auth
from rest_framework.exceptions import AuthenticationFailed

from portal.api.throttling import CountsRefusedCredentials


class TokenAuthentication(CountsRefusedCredentials, auth.TokenAuthentication):
    """knox's token check, plus the user's standing: a token outlives neither its user's
    staff status nor their active flag (the admin takes either away, not the tokens).
    Refused tokens count against the address's anonymous budget, so guessing is throttled."""

    def validate_user(self, auth_token):
        user = auth_token.user
        if not (user.is_active and user.is_staff):
            raise AuthenticationFailed("This token's user may no longer use the API.")
        return user, auth_token
