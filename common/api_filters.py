"""Filters every app's API uses: ids and booleans that refuse what they cannot read."""

from __future__ import annotations

import django_filters
from django import forms

from common.ids import MAX_ID


class IdFilter(django_filters.NumberFilter):
    """A portal id: a whole number a row can have (django-filter's NumberFilter takes
    decimals, which match by truncation, and numbers beyond 64 bits the database refuses)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0); empty is no filter. Django's field reads any other text as
    "unknown", so `removed=yes` would silently list everything."""

    # Its widget, too, reads text it does not know as "unknown"; a plain select hands it on.
    widget = forms.Select(choices=[("", "Any"), ("true", "Yes"), ("false", "No")])

    def to_python(self, value):
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError("Use true or false.", code="invalid")

    def validate(self, value):
        pass


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField
