"""``graflow ui``: check what is asked, bind the port, print the URL, serve until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys

import uvicorn

from graflow.cli import EXIT_OK, EXIT_USAGE
from graflow.cli.stores import store_config
from graflow.state.local import state_dir
from graflow.state.opening import store_for
from graflow_ui.app import create_app
from graflow_ui.settings import ENV_TOKEN, UISettings, is_loopback

__all__ = ["ui_command"]


def ui_command(args: argparse.Namespace) -> int:
    """Serve the dashboard over the store ``args`` name until Ctrl-C (exit 130, as every ``graflow``
    command); a refusal is one line on stderr and exit 2."""
    config = store_config(args)
    if not config.get("redis_url"):
        # Absolute, so that the `graflow resume` processes it starts find the same directory.
        config = {"state_dir": str(state_dir(config).resolve())}
    token = args.token or os.environ.get(ENV_TOKEN) or None
    if not is_loopback(args.host) and not token:
        return _refuse(
            f"--host {args.host} lets other machines in; give a token (--token T or {ENV_TOKEN}) that every "
            "request must carry, or keep the default --host 127.0.0.1"
        )
    try:
        listening = _bind(args.host, args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _refuse(f"port {args.port} on {args.host} is in use; choose another with --port")
        return _refuse(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})")
    settings = UISettings(store_config=config, token=token, host=args.host, port=listening.getsockname()[1])
    store = store_for(config)  # fails now, with what to do, rather than on the first page
    app = create_app(settings, store=store)
    sys.stdout.write(f"graflow ui: {store.where} at {settings.url} (Ctrl-C stops)\n")
    sys.stdout.flush()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, server_header=False))
    try:
        server.run(sockets=[listening])
    finally:
        listening.close()
        store.close()
    return EXIT_OK  # the server stopped by itself (Ctrl-C reaches `graflow`'s main as KeyboardInterrupt)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a port in use is reported before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _refuse(message: str) -> int:
    sys.stderr.write(f"graflow ui: error: {message}\n")
    return EXIT_USAGE
