"""Re-encrypting every stored secret with the first key of PORTAL_ENCRYPTION_KEYS."""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.db import transaction
from django.db.models import Case, Q, TextField, Value, When
from django.db.models.functions import Cast

from .. import audit, crypto
from ..fields import EncryptedTextField
from ..models import AuditAction, Via

BATCH_SIZE = 500


class RotationStopped(Exception):
    """A value of `label` fits no key: that model was left as it was."""

    def __init__(self, error: crypto.DecryptionError, *, label: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.label = label


def encryption_keys_rotate(
    *, batch_size: int, user, via: Via, on_model: Callable[[str, int], None]
) -> int:
    """Re-encrypt every encrypted value with the first key, one transaction per model, each
    audited with its count; call `on_model(label, count)` after each; return the total.

    Raises `RotationStopped` when a value fits no key: that model is left as it was, the
    ones reported before it are done.
    """
    total = 0
    for model, fields in encrypted_fields_by_model():
        try:
            with transaction.atomic(using=model._base_manager.db):
                count = sum(rotate_field(model, field, batch_size=batch_size) for field in fields)
                _audit_rotation(model._meta.label, count, user=user, via=via)
        except crypto.DecryptionError as exc:
            raise RotationStopped(exc, label=model._meta.label) from None
        total += count
        on_model(model._meta.label, count)
    return total


def _audit_rotation(label: str, count: int, *, user, via: Via) -> None:
    audit.record(
        AuditAction.ROTATE_ENCRYPTION_KEYS,
        user=user,
        via=via,
        parameters={"model": label, "values": count},
    )


def encrypted_fields_by_model():
    """Return (model, [EncryptedTextField, ...]) for every concrete model that has one."""
    found = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        fields = [f for f in meta.local_concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


def rotate_field(model, field, *, batch_size):
    """Re-encrypt one field of every row, batch by batch; return how many values changed."""
    pk_name = model._meta.pk.name
    # Cast to plain text so the stored token is read as-is instead of being decrypted.
    rows = (
        model._base_manager.exclude(Q(**{field.name: ""}) | Q(**{f"{field.name}__isnull": True}))
        .annotate(stored_token=Cast(field.name, output_field=TextField()))
        .order_by(pk_name)
    )
    count = 0
    last_pk = None
    while True:
        batch_rows = rows if last_pk is None else rows.filter(**{f"{pk_name}__gt": last_pk})
        batch = list(batch_rows.values_list(pk_name, "stored_token")[:batch_size])
        if not batch:
            return count
        whens = []
        for pk, token in batch:
            label = f"{model._meta.label}.{field.name} (pk={pk})"
            new_token = crypto.rotate(token, label=label)
            whens.append(When(**{pk_name: pk}, then=Value(new_token, output_field=TextField())))
        # Plain-text values, so the field does not encrypt the new token a second time.
        model._base_manager.filter(**{f"{pk_name}__in": [pk for pk, _ in batch]}).update(
            **{field.name: Case(*whens, output_field=TextField())}
        )
        count += len(batch)
        last_pk = batch[-1][0]
