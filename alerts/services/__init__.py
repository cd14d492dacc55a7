"""What the alerts app does: one module per concept, one function per verb.

`endpoints`: webhook endpoints and their secrets, tests and replays, each audited in its
transaction (`tenants.audit.record`). `deliveries`: claiming, sending and recording attempts.
"""
