"""A faithful, stateful local stand-in for the Wix REST API (see docs/wix-contract.md), over real
HTTP.

Used by the tests, the demo and the fleet benchmarks; nothing here imports Django.
"""

from .seed import Credentials, DemoSite, generate_fleet, seed_demo, seed_docs_example
from .server import SandboxServer, serve
from .state import BOOKINGS_APP_ID, Faults, RequestRecord, Sandbox, Site

__all__ = [
    "BOOKINGS_APP_ID",
    "Credentials",
    "DemoSite",
    "Faults",
    "RequestRecord",
    "Sandbox",
    "SandboxServer",
    "Site",
    "generate_fleet",
    "seed_demo",
    "seed_docs_example",
    "serve",
]
