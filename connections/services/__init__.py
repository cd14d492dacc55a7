"""What people and programs do to the mirror and to the calendar connections in Wix.

One module per topic, one function per verb, named `<noun>_<verb>`: `refresh` (bring a
tenant's mirror in line with Wix: `tenant_refresh`), `queue` (queue a refresh as a Job:
`tenant_refresh_queue`), `actions` (a connection's verbs: `connection_disconnect`, ...),
`connect` (connect a schedule to a calendar: `oauth_connect_start`, `credentials_connect`).
Reads live in `connections.selectors`, words for people in `connections.messages`.

The admin, the API, the commands and the tasks call one verb each and write nothing
themselves. Verbs take the acting `user=` and `via=` as keywords (`via` has no default). A
verb asks Wix first, then writes the mirror and its AuditEvent in one transaction, with
Wix's request id and the old and new values (`changes`). A Wix failure is audited (FAILED,
with Wix's code, message and request id) and raised as the `WixError` it was, the mirror
left as it was; a verb the portal refuses raises `errors.ActionRefused`.

Once that transaction commits, `tenants.audit.recorded` is sent with the event: the one
seam where what happened leaves the service layer. Alerts, webhooks and the like connect
there, not to an interface.
"""
