"""``featherface web``: the in-browser detector and anonymiser, served from this machine."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .common import is_loopback, port

log = logging.getLogger(__name__)


def cmd_web(args: argparse.Namespace) -> int:
    from ..apps.webapp import make_server, write_site

    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        written = write_site(args.write, overwrite=args.overwrite)
        print(f"wrote {len(written)} files to {args.write}; serve the folder from any static host "
              f"(WebAssembly threads need the headers Cross-Origin-Opener-Policy: same-origin and "
              f"Cross-Origin-Embedder-Policy: require-corp)")
        return 0
    try:
        server = make_server(args.host, args.port)
    except OSError as exc:
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    host, bound = server.server_address[:2]
    if not is_loopback(args.host):
        log.warning("listening on %s: every machine that reaches this address can load the page (photos still stay in "
                    "each browser)", args.host)
    print(f"FeatherFace in the browser: http://{host}:{bound}/  (photos stay in the browser; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("web", help="serve the in-browser detector and anonymiser (nothing leaves the browser)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=port, default=8000, help="port (0: any free port)")
    p.add_argument("--write", type=Path, metavar="DIR",
                   help="instead of serving, write the page, the models and onnxruntime-web to DIR for a static host")
    p.add_argument("--overwrite", action="store_true", help="--write: replace the page's files already in DIR")
    p.set_defaults(func=cmd_web)
