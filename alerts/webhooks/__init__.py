"""Signed webhooks by the Standard Webhooks specification: payloads, signing, the guarded
transport. No ORM here: `alerts.services.deliveries` reads and writes the rows."""
