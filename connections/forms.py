"""The sync-settings form: what the connection's provider can do, and what it already has."""

from __future__ import annotations

from collections.abc import Sequence

from django import forms

from wixapi import types as wix

from .models import Connection
from .services.errors import ActionRefused

IMPORT_MODE_LABELS = {
    wix.ImportMode.PRIMARY: "The primary calendar",
    wix.ImportMode.CALENDARS: "The calendars chosen below",
}
EXPORT_MODE_LABELS = {
    wix.ExportMode.PRIMARY: "The primary calendar",
    wix.ExportMode.DEDICATED: "A dedicated calendar that Wix creates",
}
# ActionRefused.field -> the form field the refusal is shown on.
REFUSAL_FIELDS = {"import": "import_enabled", "export": "export_enabled", "calendars": "calendars"}


def _ordered(modes: set, labels: dict) -> list[tuple[str, str]]:
    return [(mode.value, label) for mode, label in labels.items() if mode in modes]


class SyncSettingsForm(forms.Form):
    """Import and export settings of one connection; `sync_config()` is the complete config.

    The modes offered are `Connection.import_modes` / `export_modes`: the provider's and
    the connection's own, so a config Wix made is offered back as it is. A direction
    with nothing to offer has no fields and is sent back as it is. `calendars` are the
    account's calendars (List Calendars) offered for import.
    """

    import_enabled = forms.BooleanField(
        label="Import events", required=False, help_text="Block booking times with its events."
    )
    import_mode = forms.ChoiceField(label="Import from", widget=forms.RadioSelect, required=False)
    calendars = forms.MultipleChoiceField(
        label="Calendars to import from",
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    export_enabled = forms.BooleanField(
        label="Export bookings", required=False, help_text="Put Wix bookings in the calendar."
    )
    export_mode = forms.ChoiceField(label="Export to", widget=forms.RadioSelect, required=False)

    def __init__(
        self,
        *args,
        connection: Connection,
        calendars: Sequence[wix.Calendar] = (),
        **kwargs,
    ) -> None:
        provider = connection.provider
        self.current = current = connection.sync_config
        imp, exp = current.list_event_from_calendars, current.sync_to_calendar
        self.import_modes = connection.import_modes()
        self.export_modes = connection.export_modes()
        # The chosen calendars keep their names when List Calendars could not be read.
        self.calendar_names = {c.id: c.name for c in (*imp.calendars, *calendars)}
        import_mode = imp.mode if imp.mode in self.import_modes else None
        export_mode = exp.mode if exp.mode in self.export_modes else None
        kwargs.setdefault(
            "initial",
            {
                "import_enabled": imp.enabled,
                "import_mode": import_mode or (provider and provider.default_import_mode()) or "",
                "calendars": [c.id for c in imp.calendars],
                "export_enabled": exp.enabled,
                "export_mode": export_mode or (provider and provider.default_export_mode()) or "",
            },
        )
        super().__init__(*args, **kwargs)
        if self.import_modes:
            self.fields["import_mode"].choices = _ordered(self.import_modes, IMPORT_MODE_LABELS)
        else:
            del self.fields["import_enabled"], self.fields["import_mode"]
        if wix.ImportMode.CALENDARS in self.import_modes and calendars:
            self.fields["calendars"].choices = [(c.id, c.name or c.id) for c in calendars]
        else:
            del self.fields["calendars"]
        if self.export_modes:
            self.fields["export_mode"].choices = _ordered(self.export_modes, EXPORT_MODE_LABELS)
        else:
            del self.fields["export_enabled"], self.fields["export_mode"]

    def clean(self):
        data = super().clean()
        if data.get("import_enabled") and "import_mode" not in self.errors:
            if not data.get("import_mode"):
                self.add_error("import_mode", "Choose where to import events from.")
            elif data["import_mode"] == wix.ImportMode.CALENDARS and not data.get("calendars"):
                if "calendars" in self.fields:
                    self.add_error("calendars", "Choose at least one calendar to import from.")
                else:
                    self.add_error(
                        "import_mode", "The calendars could not be loaded; choose another source."
                    )
        if (
            data.get("export_enabled")
            and not data.get("export_mode")
            and "export_mode" not in self.errors
        ):
            self.add_error("export_mode", "Choose where to export bookings to.")
        return data

    def sync_config(self) -> wix.SyncConfig:
        """Return the complete sync config the cleaned form asks for."""
        data = self.cleaned_data
        imp, exp = self.current.list_event_from_calendars, self.current.sync_to_calendar
        if self.import_modes:
            mode = wix.ImportMode(data["import_mode"]) if data.get("import_mode") else imp.mode
            chosen = (
                tuple(
                    wix.Calendar(id=cid, name=self.calendar_names.get(cid, ""))
                    for cid in data.get("calendars", ())
                )
                if mode is wix.ImportMode.CALENDARS
                else ()
            )
            import_config = wix.ImportConfig(
                enabled=bool(data.get("import_enabled")), mode=mode, calendars=chosen
            )
        else:
            import_config = imp
        if self.export_modes:
            mode = wix.ExportMode(data["export_mode"]) if data.get("export_mode") else exp.mode
            export_config = wix.ExportConfig(enabled=bool(data.get("export_enabled")), mode=mode)
        else:
            export_config = exp
        return wix.SyncConfig(
            list_event_from_calendars=import_config, sync_to_calendar=export_config
        )

    def add_refusal(self, refused: ActionRefused) -> None:
        """Show an `ActionRefused` on the field it concerns, or above the form."""
        name = REFUSAL_FIELDS.get(refused.field or "")
        self.add_error(name if name in self.fields else None, refused.message)
