"""The outbox: a Django email backend that keeps messages in the database instead of sending.

Used when EMAIL_URL is unset, so a development checkout or the demo never mails anyone and
still shows, in the admin, every email the portal would have sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from .models import OutboxMessage


class OutboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        rows = [_row(message) for message in email_messages if message.recipients()]
        OutboxMessage.objects.bulk_create(rows)
        return len(rows)


def _row(message: EmailMessage) -> OutboxMessage:
    html = next(
        (
            content
            for content, mimetype in getattr(message, "alternatives", ())
            if mimetype == "text/html"
        ),
        "",
    )
    return OutboxMessage(
        from_email=message.from_email,
        to=list(message.recipients()),
        subject=message.subject,
        text=message.body,
        html=html,
        headers={name: str(value) for name, value in message.extra_headers.items()},
    )
