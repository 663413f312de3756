"""``dreamreel serve``: the studio in the browser and the A1111 API (the ``serve`` extra)."""

from __future__ import annotations

import contextlib
import os

import click

from dreamreel.cli.app import cli
from dreamreel.errors import DreamreelError


def this_machine_names() -> list[str]:
    """The names and addresses clients on the network may use for this machine (--listen)."""
    import socket

    names = [socket.gethostname(), socket.getfqdn()]
    with contextlib.suppress(OSError):
        names += socket.gethostbyname_ex(socket.gethostname())[2]
    return names


@cli.command()
@click.option("--host", help="Address to bind (default 127.0.0.1; 0.0.0.0 with --listen).")
@click.option("--port", type=int, default=7860, show_default=True, help="Port to bind.")
@click.option("--model", default=None, help="The one model this server keeps loaded (default SD 1.5; tiny to try).")
@click.option("--out", "-o", default="outputs", show_default=True, help="Output folder: the queue, gallery and uploads.")
@click.option("--listen", is_flag=True, help="Serve the network, not only this machine (needs --password).")
@click.option("--password", envvar="DREAMREEL_PASSWORD", help="Password every request needs (env DREAMREEL_PASSWORD).")
@click.option("--allow-host", "allow_hosts", multiple=True, help="Another Host name the server answers to (repeatable; --listen adds this machine's names).")
@click.option("--max-upload", type=int, default=200, show_default=True, help="Largest upload, in MB.")
@click.option("--no-previews", is_flag=True, help="No live previews of the forming picture.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def serve(
    host: str | None,
    port: int,
    model: str | None,
    out: str,
    listen: bool,
    password: str | None,
    allow_hosts: tuple[str, ...],
    max_upload: int,
    no_previews: bool,
    debug: bool,
) -> None:
    """The studio in the browser (forms, queue, live previews, gallery) and A1111's HTTP API.

    Binds 127.0.0.1 unless --listen (which needs --password). One model, loaded once: open
    http://127.0.0.1:7860/ at once, the page is there before the model is.
    """
    from pathlib import Path

    from dreamreel.models.loading import DEFAULT_MODEL, check_model_spec

    if listen and not password:
        raise DreamreelError("--listen serves the network: give a --password (or DREAMREEL_PASSWORD) too")
    if not 0 < port < 65536:
        raise DreamreelError(f"--port must be from 1 to 65535, got {port}")
    if max_upload < 1:
        raise DreamreelError(f"--max-upload must be at least 1 (MB), got {max_upload}")
    spec = model or DEFAULT_MODEL
    check_model_spec(spec)
    bind = host or ("0.0.0.0" if listen else "127.0.0.1")
    if not password and not (bind in ("localhost", "::1") or bind.startswith("127.")):
        raise DreamreelError(f"--host {bind} serves the network: give a --password (or DREAMREEL_PASSWORD) too")
    if listen:
        allow_hosts = (*allow_hosts, *this_machine_names())
    try:
        from dreamreel.serve.app import Settings, run_server
    except ImportError as exc:
        raise DreamreelError(f'dreamreel serve needs the serve extra: pip install "dreamreel[serve]" ({exc})') from None
    settings = Settings(
        out=Path(out).resolve(), model=spec, host=bind, password=password, allow_hosts=allow_hosts,
        max_upload_mb=max_upload, previews=not no_previews,
    )  # fmt: skip
    shown = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind
    click.echo(f"dreamreel studio: http://{shown}:{port}/  (model {spec}, output {settings.out})", err=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    run_server(settings, port)
