"""Run the test authorization server: `python -m tests.authserver [--data-dir D] [--port P] [--seed FILE]`.

Generates an RSA key for OIDC, migrates its own SQLite file in the data directory, seeds users
and applications (--seed or AUTHSERVER_SEED, a file path), then serves on 127.0.0.1 with
threads. The port it bound (port 0 picks a free one) is written to DATA_DIR/port once it
accepts connections. `python -m tests.authserver seed FILE` seeds a running server's data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _rsa_key(data_dir: Path) -> str:
    path = data_dir / "oidc.key"
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path.read_text()


def _setup(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["AUTHSERVER_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("AUTHSERVER_RSA_KEY", _rsa_key(data_dir))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.authserver.settings"
    import django

    django.setup()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.authserver")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "seed"])
    parser.add_argument("file", nargs="?", help="seed: the JSON file (default: standard input)")
    parser.add_argument("--data-dir", default=os.environ.get("AUTHSERVER_DATA_DIR") or str(Path(__file__).parent / "var"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AUTHSERVER_PORT") or 0))
    parser.add_argument("--seed", default=os.environ.get("AUTHSERVER_SEED"))
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    _setup(data_dir)
    from django.core.management import call_command

    from tests.authserver.seed import seed

    if args.command == "seed":
        print(json.dumps(seed(json.load(open(args.file) if args.file else sys.stdin))))
        return
    call_command("migrate", verbosity=0, interactive=False)
    if args.seed:
        seed(json.loads(Path(args.seed).read_text()))
    serve(data_dir, args.port)


def serve(data_dir: Path, port: int) -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
            if os.environ.get("AUTHSERVER_VERBOSE"):
                super().log_message(format, *args)

    server = ThreadedWSGIServer(("127.0.0.1", port), QuietHandler, ipv6=False)
    server.daemon_threads = True
    server.set_app(WSGIHandler())
    tmp = data_dir / "port.tmp"
    tmp.write_text(str(server.server_address[1]))
    tmp.replace(data_dir / "port")
    print(f"authserver listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
