"""A model field that keeps its text encrypted at rest (see tenants.crypto).

A value read from the database stays encrypted on the instance, as a `Sealed` token, and is
decrypted only where it is used (`reveal`), the way `Session.session_data` is decoded only
by `get_decoded()`. So a row whose secret no configured key opens still loads: its tenant
lists, shows "credentials unreadable" and takes a new secret, and every other row is
untouched.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import FieldError, ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import lookups

from tenants import crypto

NOT_SET = ""
# What `dumpdata` writes for a set value: this prefix and a Fernet token, so a fixture holds
# no secret in clear; `loaddata` decrypts it with the configured keys (as the database's
# own values need them) and the save encrypts it again. A secret typed with this prefix
# would be taken for such a token: no Wix API key or app secret has it.
SERIALIZED_PREFIX = "encrypted:"

# Wix API keys and app secrets are printable ASCII, and they travel in HTTP headers and JSON.
# A pasted typographic quote, emoji or line break would be refused by the HTTP library with
# the whole value in its error message: refused here, at every entry, instead.
validate_printable_ascii = RegexValidator(
    regex=r"\A[\x21-\x7e]*\Z",
    message=(
        "Use only printable ASCII characters, without spaces or line breaks "
        "(a pasted key sometimes carries typographic quotes or an invisible character)."
    ),
    code="not_printable_ascii",
)


class Sealed:
    """A stored secret as read from the database: its Fernet token, not yet decrypted.

    True when set; never equal to, formatted as or printed as its plaintext.
    """

    __slots__ = ("label", "token")

    def __init__(self, token: str, *, label: str) -> None:
        self.token = token
        self.label = label

    def reveal(self) -> str:
        """Return the plaintext; raise `crypto.DecryptionError` (naming the field) if no key
        fits."""
        return crypto.decrypt(self.token, label=self.label)

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other) -> bool:
        return isinstance(other, Sealed) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)

    def __repr__(self) -> str:
        return f"<Sealed {self.label}>"

    __str__ = __repr__


def reveal(value: str | Sealed | None) -> str:
    """Return the plaintext of a secret field's value: "" when not set.

    Raises `crypto.DecryptionError` for a stored value that no configured key decrypts.
    """
    if isinstance(value, Sealed):
        return value.reveal()
    return value or NOT_SET


def is_readable(value: str | Sealed | None) -> bool:
    """Whether the value can be used: not set, typed in this process, or decryptable."""
    try:
        reveal(value)
    except crypto.DecryptionError:
        return False
    return True


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; "" means "not set" and is stored as "".

    A loaded value is a `Sealed` token; `reveal(value)` decrypts it, raising
    `crypto.DecryptionError` when no configured key fits; the ciphertext is never handed
    back as if it were the secret. Saving a `Sealed` value writes its token unchanged.
    Encryption is randomised, so the only lookups that mean anything are `isnull` and
    `exact` against "" (set or not set); others raise. Values are printable ASCII.
    """

    description = "Text encrypted at rest"
    default_validators = [validate_printable_ascii]

    def get_prep_value(self, value):
        if isinstance(value, Sealed):
            return value.token
        value = super().get_prep_value(value)
        if value is None or value == NOT_SET:
            return value
        return crypto.encrypt(value)

    def from_db_value(self, value, expression, connection):
        if value is None or value == NOT_SET:
            return value
        return Sealed(value, label=self._label())

    def run_validators(self, value):
        # A sealed value was validated when it was entered; its token is not the secret.
        if not isinstance(value, Sealed):
            super().run_validators(value)

    def value_to_string(self, obj):
        token = self.get_prep_value(self.value_from_object(obj))
        return SERIALIZED_PREFIX + token if token else token

    def to_python(self, value):
        if isinstance(value, Sealed):
            return value
        if isinstance(value, str) and value.startswith(SERIALIZED_PREFIX):
            try:
                return crypto.decrypt(value.removeprefix(SERIALIZED_PREFIX), label=self._label())
            except crypto.DecryptionError as exc:
                raise ValidationError(str(exc), code="undecryptable") from None
        return super().to_python(value)

    def get_lookup(self, lookup_name):
        if lookup_name == "exact":
            return EncryptedExact
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise FieldError(self._unsupported(lookup_name))

    def get_transform(self, lookup_name):
        raise FieldError(self._unsupported(lookup_name))

    def formfield(self, **kwargs):
        # Whatever widget is asked for (the admin asks for a textarea), a stored secret is
        # never rendered back into a page.
        kwargs["widget"] = forms.PasswordInput(render_value=False)
        return super().formfield(**{"strip": True, **kwargs})

    def _label(self) -> str:
        model = getattr(self, "model", None)
        if model is None:
            return "an encrypted field"
        return f"{model._meta.label}.{self.name}"

    def _unsupported(self, lookup_name: str) -> str:
        return (
            f"{self._label()} is encrypted: only the isnull lookup and exact "
            f'against "" (not set) are supported, not {lookup_name!r}.'
        )


class EncryptedExact(lookups.Exact):
    """`exact` limited to "", since equal plaintexts encrypt to different tokens."""

    def get_prep_lookup(self):
        if self.rhs is not None and self.rhs != NOT_SET:
            raise FieldError(
                f'{self.lhs.output_field._label()} is encrypted: exact lookups only accept "" '
                "(not set)."
            )
        return super().get_prep_lookup()
