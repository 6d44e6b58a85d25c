"""``featherface serve``: the detector as an HTTP service (:mod:`featherface.apps.serve`)."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket

from ..core.settings import WORKERS
from .common import int_at_least, is_loopback, non_negative_float, port

log = logging.getLogger(__name__)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..core.errors import UsageError
    from ..core.runners import require

    require("uvicorn", "serve")
    require("starlette", "serve")
    import uvicorn

    from ..apps.serve import ServeConfig, create_app

    token = args.token or os.environ.get("FEATHERFACE_TOKEN") or None
    config = ServeConfig(model=args.model, workers=args.workers, queue=args.queue, max_body=args.max_body,
                         max_pixels=args.max_pixels, timeout=args.timeout, token=token)
    app = create_app(config)  # loads the model: a bad --model fails here, before the port opens
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
        sock.listen(2048)  # connections wait in the backlog from now on: the address printed below answers
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    host, port = sock.getsockname()[:2]
    if not is_loopback(args.host) and token is None:
        log.warning("listening on %s without --token: anyone who can reach this address can use the service", args.host)
    where = "this machine only" if is_loopback(args.host) else "the network"
    print(f"FeatherFace service on http://{'[' + host + ']' if ':' in host else host}:{port}/ ({where}; "
          f"{config.workers} worker(s), {'token required' if token else 'no token'}; SIGTERM or Ctrl-C drains and stops)",
          flush=True)
    # uvicorn re-raises the signal that stopped it after draining: a no-op handler makes that a clean exit 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning" if not args.verbose else "info",
                                           timeout_graceful_shutdown=int(args.timeout) + 5, access_log=args.verbose,
                                           limit_concurrency=None, timeout_keep_alive=5))
    server.run(sockets=[sock])
    print("stopped", flush=True)
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("serve", help="serve detection, anonymisation and crops over HTTP (the [serve] extra)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: this machine only; 0.0.0.0: every interface, with --token)")
    p.add_argument("--port", type=port, default=8000, help="port (0: any free port)")
    p.add_argument("--model", default="nano", help="'nano', 'nano-int8', an .onnx graph or a checkpoint")
    p.add_argument("--workers", type=int_at_least(1), default=WORKERS,
                   help="images processed at once, each on one engine thread (default: the CPUs, at most 4: %(default)s here)")
    p.add_argument("--queue", type=int_at_least(0), default=4,
                   help="requests that may wait per worker; beyond that the answer is 503 with Retry-After")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every POST (or set FEATHERFACE_TOKEN)")
    p.add_argument("--max-body", type=int_at_least(1), default=20 * 1024 * 1024, help="largest request body in bytes")
    p.add_argument("--max-pixels", type=int_at_least(1), default=40_000_000,
                   help="largest image, width x height from its header (checked before decoding)")
    p.add_argument("--timeout", type=non_negative_float, default=30.0,
                   help="seconds an image may wait and run before the answer is 503")
    p.set_defaults(func=cmd_serve)
