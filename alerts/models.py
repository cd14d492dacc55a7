"""What the portal has sent, or would have sent."""

from __future__ import annotations

from django.db import models


class OutboxMessage(models.Model):
    """An email kept instead of sent: the mail backend when EMAIL_URL is unset (the demo,
    a development checkout), shown in the admin. Nothing leaves the machine."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    from_email = models.CharField(max_length=320)
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=998)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "outbox email"
        verbose_name_plural = "outbox (emails kept, not sent)"

    def __str__(self) -> str:
        return f"{self.subject} → {', '.join(self.to)}"
