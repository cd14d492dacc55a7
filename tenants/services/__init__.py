"""What people and programs do to tenants, their members, Wix apps and API tokens.

One function per verb, named `<noun>_<verb>`; the admin, the API and the commands call it and
do nothing else that writes. Each writes its rows and its AuditEvent in one transaction
(`tenants.audit.record`), and `audit.recorded` announces the event once that transaction
commits: the one place where what happened leaves the service layer.
"""
