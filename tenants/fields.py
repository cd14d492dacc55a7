"""A model field that keeps its text encrypted at rest (see tenants.crypto)."""

from django import forms
from django.core.exceptions import FieldError, ValidationError
from django.db import models
from django.db.models import lookups

from tenants import crypto

NOT_SET = ""
# What `dumpdata` writes for a set value: this prefix and a Fernet token, so a fixture holds
# no secret in clear; `loaddata` decrypts it with the configured keys (as the database's
# own values need them) and the save encrypts it again. A secret typed with this prefix
# would be taken for such a token: no Wix API key or app secret has it.
SERIALIZED_PREFIX = "encrypted:"


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; "" means "not set" and is stored as "".

    Reading a value that no configured key decrypts raises `crypto.DecryptionError`; the
    ciphertext is never handed back. Encryption is randomised, so the only lookups that
    mean anything are `isnull` and `exact` against "" (set or not set); others raise.
    """

    description = "Text encrypted at rest"

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == NOT_SET:
            return value
        return crypto.encrypt(value)

    def from_db_value(self, value, expression, connection):
        if value is None or value == NOT_SET:
            return value
        return crypto.decrypt(value, label=self._label())

    def value_to_string(self, obj):
        token = self.get_prep_value(self.value_from_object(obj))
        return SERIALIZED_PREFIX + token if token else token

    def to_python(self, value):
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
