"""`python -m wixapi.sandbox --port 8765 [--demo] [--fleet 1000x25] [--latency-ms 50]`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from .seed import Credentials, generate_fleet, seed_demo
from .server import serve
from .state import Sandbox


def _fleet_size(value: str) -> tuple[int, int]:
    try:
        sites, per_site = (int(part) for part in value.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError("use SITESxCONNECTIONS, e.g. 1000x25") from error
    return sites, per_site


def write_credentials(path: str, payload: dict) -> None:
    """Write secrets readable by the owner only (0600), also when the file already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wixapi.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--demo", action="store_true", help="seed the three demo sites")
    parser.add_argument("--fleet", type=_fleet_size, metavar="SITESxCONNS")
    parser.add_argument("--seed", type=int, default=1, help="fleet seed")
    parser.add_argument("--latency-ms", type=float, default=0, help="added to every call")
    parser.add_argument("--credentials-file", metavar="PATH", help="write credentials here")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    sandbox = Sandbox()
    sandbox.default_latency = args.latency_ms / 1000
    seeded: dict[str, dict] = {}
    if args.demo:
        seeded["demo"] = seed_demo(sandbox).to_dict()
    if args.fleet:
        fleet: Credentials = generate_fleet(sandbox, *args.fleet, seed=args.seed)
        seeded["fleet"] = fleet.to_dict()
    server = serve(sandbox, args.host, args.port, quiet=not args.verbose)
    print(f"Wix sandbox serving on {server.url}", flush=True)
    if seeded and args.credentials_file:
        write_credentials(args.credentials_file, {"url": server.url, **seeded})
        print(f"Credentials written to {args.credentials_file}", flush=True)
    elif seeded:
        print("Pass --credentials-file PATH to get the seeded credentials.", flush=True)
    # SIGTERM (e.g. from a process manager) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
