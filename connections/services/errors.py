"""What the verbs raise besides Wix's own errors (`wixapi.errors`)."""

from __future__ import annotations


class ActionRefused(Exception):
    """The portal refuses the verb for this connection or tenant: the provider cannot do
    it, an input is bad, or a rule says no.

    `field` names the input it concerns, for forms and the API; `code` names the rule, for
    an interface that words it its own way.
    """

    def __init__(self, message: str, *, field: str | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class RefreshInProgress(Exception):
    """A refresh of the tenant is running or queued already."""


class TenantInactive(Exception):
    """The tenant is inactive: its refreshes are off."""


class ReturnRefused(Exception):
    """An OAuth return whose state is unknown, used or expired."""
