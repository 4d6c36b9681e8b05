"""kairos-serve: serve a bringup profile's world model to remote robots (docs/remote-protocol.md).

    kairos-serve --config config/aloha.yaml [--backend kairos] --token-file token.txt
    KAIROS_SERVE_TOKEN=... kairos-serve --config config/aloha.yaml --host 0.0.0.0 --certfile c.pem --keyfile k.pem

The profile's world_model section is validated with the world-model node's own schema. Secure by
default: binds 127.0.0.1, refuses to start without a token (--insecure-no-auth says otherwise out
loud), refuses a non-loopback address without TLS (--allow-plaintext), caps message size, sessions
and idle time.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import ssl
import stat
import sys

from kairos_ros.serve import StartError

TOKEN_ENV = "KAIROS_SERVE_TOKEN"
MIN_TOKEN = 16  # characters


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: str, insecure: bool) -> str | None:
    if path:
        try:
            mode = os.stat(path).st_mode
            with open(path, encoding="utf-8") as f:
                token = f.read(4096).strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise StartError(f"--token-file {path}: {exc.__class__.__name__}: {exc.strerror or exc}") from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            print(f"kairos-serve: warning: --token-file {path} is readable by other users (chmod 600 it)",
                  file=sys.stderr)
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if token and insecure:
        raise StartError("--insecure-no-auth given together with a token: choose one")
    if insecure:
        return None
    if not token:
        raise StartError(f"no token: give --token-file or set {TOKEN_ENV} (or --insecure-no-auth to serve "
                         "without authentication)")
    if len(token) < MIN_TOKEN or any(c.isspace() for c in token):
        raise StartError(f"the token must be at least {MIN_TOKEN} characters without white space")
    return token


def tls_context(certfile: str, keyfile: str):
    if bool(certfile) != bool(keyfile):
        raise StartError("--certfile and --keyfile go together")
    if not certfile:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise StartError(f"--certfile/--keyfile: {exc}") from None
    return ctx


def served_model(config: str, backend: str, embodiment: str):
    """The profile's world_model section, validated as the node does, as a ServedModel."""
    from kairos_ros.backends import make_backend
    from kairos_ros.core.embodiment import load_embodiment
    from kairos_ros.params.world_model import backend_options, check_world_model
    from kairos_ros.remote.session import Prebuilt, ServedModel
    from kairos_ros.serve.profile import world_model_params

    params = world_model_params(config, backend, embodiment)
    spec = load_embodiment(params["embodiment"])
    options = backend_options(params)

    def make():
        return make_backend(params["backend"], spec, **options)

    probe = make()  # refuses bad settings (and missing weights) now, not at the first robot
    check_world_model(params, probe)  # the loaded model's own requirements, as the node checks them
    horizon = getattr(probe, "required_horizon", None) or params["horizon"]
    kairos = params["backend"] == "kairos"
    return ServedModel(Prebuilt(make, probe), spec.name, tuple(spec.slot_names), horizon,
                       params["step_period"] or spec.default_step_period, params["history_length"],
                       backend=probe.name, model=probe.model, temporal_mode=params["temporal_mode"] if kairos else "",
                       num_predicted_frames=params["num_predicted_frames"],
                       image_width=params["image_width"] if kairos else 0,
                       image_height=params["image_height"] if kairos else 0)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="kairos-serve", description="serve a profile's world model over websockets")
    ap.add_argument("--config", required=True, help="bringup profile YAML (its world_model section)")
    ap.add_argument("--backend", default="", choices=["", "hold", "extrapolate", "kairos"],
                    help="override the profile's backend")
    ap.add_argument("--embodiment", default="", help="robot (default: the profile's, else the config's name)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one, printed)")
    ap.add_argument("--token-file", default="", help=f"file holding the bearer token (else ${TOKEN_ENV})")
    ap.add_argument("--insecure-no-auth", action="store_true", help="serve without a token (loopback tests only)")
    ap.add_argument("--certfile", default="", help="TLS certificate (PEM): serve wss")
    ap.add_argument("--keyfile", default="", help="TLS private key (PEM)")
    ap.add_argument("--allow-plaintext", action="store_true", help="allow a non-loopback bind without TLS")
    ap.add_argument("--max-message-bytes", type=int, default=8 * 2**20, help="largest message (default 8 MiB)")
    ap.add_argument("--max-sessions", type=int, default=16, help="robots served at once (default 16)")
    ap.add_argument("--idle-timeout", type=float, default=60.0, help="close a silent session after (s, default 60)")
    ap.add_argument("--hello-timeout", type=float, default=5.0, help="handshake and hello deadline (s, default 5)")
    ap.add_argument("--workers", type=int, default=2, help="inference threads (default 2)")
    from kairos_ros.serve.ray_serve import add_ray_options
    add_ray_options(ap)  # --ray: the model as a Ray Serve deployment behind this gateway (serve/ray_serve.py)
    return ap.parse_args(argv)


def check_args(args) -> None:
    checks = [("--port", 0 <= args.port <= 65535), ("--max-message-bytes", 1024 <= args.max_message_bytes <= 2**30),
              ("--max-sessions", 1 <= args.max_sessions <= 4096), ("--idle-timeout", 0.1 <= args.idle_timeout <= 86400),
              ("--hello-timeout", 0.1 <= args.hello_timeout <= 600), ("--workers", 1 <= args.workers <= 256)]
    for name, ok in checks:
        if not ok:
            raise StartError(f"{name} {getattr(args, name[2:].replace('-', '_'))} is out of range")
    if not is_loopback(args.host) and not args.certfile and not args.allow_plaintext:
        raise StartError(f"--host {args.host} is not a loopback address: serve TLS (--certfile/--keyfile) or "
                         "say --allow-plaintext (tokens and observations would cross the network in clear)")


def main(argv=None) -> int:
    from kairos_ros.core.params import ParameterError
    from kairos_ros.remote.server import RemoteServer, ServerSettings
    from kairos_ros.remote.session import SessionManager

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        check_args(args)
        token = read_token(args.token_file, args.insecure_no_auth)
        ctx = tls_context(args.certfile, args.keyfile)
        if args.ray:  # sessions forward to a Ray Serve deployment (serve/ray_serve.py); no model in this process
            from kairos_ros.serve.ray_serve import ray_served
            served = ray_served(args)
        else:
            served = served_model(args.config, args.backend, args.embodiment)
    except (StartError, ParameterError, ValueError, FileNotFoundError) as exc:
        print(f"kairos-serve: {exc}", file=sys.stderr)
        return 2
    settings = ServerSettings(args.host, args.port, token, ctx, args.max_message_bytes, args.max_sessions,
                              args.idle_timeout, args.hello_timeout, args.workers)
    server = RemoteServer(settings, SessionManager(served, args.max_sessions, args.idle_timeout))
    scheme = "wss" if ctx else "ws"

    def ready(port: int) -> None:
        auth = "bearer token" if token else "NO AUTHENTICATION (--insecure-no-auth)"
        print(f"kairos-serve: serving {served.backend} ({served.model}) for {served.embodiment} on "
              f"{scheme}://{args.host}:{port} ({auth}, at most {args.max_sessions} sessions)", flush=True)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.run(stop, ready)

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"kairos-serve: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print("kairos-serve: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
