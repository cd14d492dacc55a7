import pytest
from cryptography.fernet import Fernet
from django.db import connection


@pytest.fixture
def fernet_key():
    """Return a fresh Fernet key (text), as PORTAL_ENCRYPTION_KEYS holds them."""
    return Fernet.generate_key().decode()


@pytest.fixture
def encryption_key(settings, fernet_key):
    """Configure one explicit encryption key and return it."""
    settings.PORTAL_ENCRYPTION_KEYS = [fernet_key]
    return fernet_key


@pytest.fixture
def read_raw():
    """Return a function reading a column as stored, bypassing the ORM (and decryption)."""

    def read(model, field_name, pk):
        table = connection.ops.quote_name(model._meta.db_table)
        column = connection.ops.quote_name(model._meta.get_field(field_name).column)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
            return cursor.fetchone()[0]

    return read
