"""``nudgelab serve [--host 127.0.0.1] [--port 8600]``: the receiver for gateways' callbacks,
inbound messages, tracked links and dwell beacons (``dispatch.receiver.app``), under uvicorn.

Point Kannel's delivery reports at it with ``NUDGELAB_RECEIVER_URL=http://HOST:PORT`` when running
``nudgelab dispatch``; tracked links in messages use the same base URL. Exit status: 0 stopped
(Ctrl-C or SIGTERM); 2 the address cannot be used.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from warehouse.settings import load_settings


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve", help="the receiver: gateways' callbacks, replies, tracked links and beacons, into the spool",
        description="Serves GET|POST /kannel/dlr (Kannel's dlr-url), GET|POST /kannel/mo (inbound messages: STOP, "
        "START, HELP act at once), POST /twilio/status and /twilio/inbound (X-Twilio-Signature checked when "
        "NUDGELAB_TWILIO_AUTH_TOKEN is set), GET|HEAD /l/{code} (tracked links), POST /beacon (dwell) and "
        "POST /sendgrid/events (SendGrid's event webhook; its signature checked when NUDGELAB_SENDGRID_PUBLIC_KEY "
        "is set), GET /healthz. Every callback is appended to $NUDGELAB_HOME/spool as received and fsync'd before it is "
        "answered; `nudgelab ingest --spool` lands it. Bad requests get 4xx and the receiver keeps running.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8600, help="port (default 8600)")
    parser.set_defaults(func=cmd_serve)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from dispatch.receiver.app import create_app

    if not 0 < args.port < 65536:
        print(f"nudgelab: --port {args.port} is not a TCP port", file=sys.stderr)
        return 2
    with socket.socket() as probe:  # a one-line reason instead of uvicorn's traceback
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            print(f"nudgelab: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    settings = load_settings()
    settings.ensure()
    from dispatch.receiver.sendgrid_signature import BadKey, load_key

    if os.environ.get("NUDGELAB_SENDGRID_PUBLIC_KEY"):
        try:
            load_key(os.environ["NUDGELAB_SENDGRID_PUBLIC_KEY"])
        except BadKey as exc:
            print(f"nudgelab: {exc}", file=sys.stderr)
            return 2
    rotate = float(os.environ.get("NUDGELAB_RECEIVER_ROTATE_SECONDS", "5"))
    print(f"nudgelab receiver on http://{args.host}:{args.port} (spool: {settings.spool_dir}); Ctrl-C stops it",
          file=sys.stderr, flush=True)
    # a deep listen backlog: Kannel does not retry a refused callback unless told to
    uvicorn.run(create_app(settings.home, rotate), host=args.host, port=args.port, log_level="warning",
                access_log=False, backlog=4096, lifespan="on")
    return 0
