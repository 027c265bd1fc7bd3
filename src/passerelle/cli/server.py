"""``passerelle server``: build the app from the settings, say where it is, and serve it.

The flags override the ``PASSERELLE_*`` variables of the same fields, so a flag and a variable
can never disagree about what the server does. A configuration the server refuses (auth off on a
public address, no API key, an unreachable database, a port already taken) is one red line and
exit code 2, never a traceback: it is the operator's to fix, not a bug.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from passerelle import __version__
from passerelle.cli.output import console, fail
from passerelle.cli.state import get_state

if TYPE_CHECKING:
    from passerelle.core.settings import Settings

EXIT_REFUSED = 2


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            metavar="HOST",
            help="Address to listen on (PASSERELLE_HOST, default 127.0.0.1). Any address other "
            "than loopback needs API keys.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            metavar="PORT",
            min=0,
            max=65535,
            help="Port to listen on (PASSERELLE_PORT, default 5050; 0 picks a free one).",
            show_default=False,
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            metavar="PATH",
            help="Folder of the SQLite file and the artifacts (PASSERELLE_HOME).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            max=256,
            help="Server processes on the port. Each has its own socket and the "
            "kernel spreads connections across them (SO_REUSEPORT, Linux).",
        ),
    ] = 1,
) -> None:
    """Start the platform: web UI, REST API and API docs on one port.

    Prints the URL of the UI, then serves until Ctrl+C or SIGTERM.
    """
    from passerelle.core.errors import PasserelleError
    from passerelle.core.settings import Settings

    home = home if home is not None else get_state(ctx).home
    overrides = {"host": host, "port": port, "home": home}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    try:
        app = _build_app(settings)
    except PasserelleError as exc:
        raise fail(exc.message, exc.field, code=EXIT_REFUSED) from None
    if workers > 1:
        _serve_workers(app, settings, workers)
        return
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        app.state.engine.dispose()
        reason = exc.strerror or str(exc)
        where = f"{settings.host}:{settings.port}"
        raise fail(f"cannot listen on {where}: {reason}", code=EXIT_REFUSED) from None
    actual_port = sock.getsockname()[1]
    console().print(startup_panel(settings, actual_port))
    sys.stdout.flush()  # the URL must reach a pipe before uvicorn takes over

    import uvicorn

    from passerelle.serving.process import uvicorn_config

    config = uvicorn_config(app, settings.host, actual_port)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        app.state.engine.dispose()


def _serve_workers(app: Any, settings: Settings, workers: int) -> None:
    """Several processes: this one checked the configuration by building the app once; it now
    supervises workers that each build their own."""
    from passerelle.serving import workers as multi

    app.state.stop_background.set()
    app.state.engine.dispose()
    if not multi.supported():
        raise fail(
            "--workers above 1 needs SO_REUSEPORT load balancing (Linux); run one process per "
            "port instead",
            "workers",
            code=EXIT_REFUSED,
        )
    try:
        held = multi.reserve_port(settings.host, settings.port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise fail(
            f"cannot listen on {settings.host}:{settings.port}: {reason}", code=EXIT_REFUSED
        ) from None
    port = held.getsockname()[1]

    def announce() -> None:
        console().print(startup_panel(settings, port, workers))
        sys.stdout.flush()

    try:
        multi.Supervisor(settings, workers, held).run(announce)
    except multi.WorkersFailed as exc:
        raise fail(str(exc), "workers", code=1) from None


def _build_app(settings: Settings) -> Any:
    """``create_app``, with database failures reported as a refusal to start."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    from passerelle.app import create_app
    from passerelle.core.errors import PasserelleError

    try:
        return create_app(settings)
    except (OperationalError, ArgumentError) as exc:
        try:
            shown = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        except ArgumentError:
            shown = "PASSERELLE_DATABASE_URL"
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise PasserelleError(
            f"cannot open the metadata database {shown}: {reason}", field="database_url"
        ) from None


def bind(host: str, port: int) -> socket.socket:
    """Open the listening socket before serving, so a taken port fails with a clear message."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # from here connections queue, so the printed URL works at once
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def base_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` with IPv6 literals in brackets."""
    shown = host.strip("[]")
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def startup_panel(settings: Settings, port: int, workers: int = 1) -> Panel:
    """Where the UI and the API docs are, what is stored where, and whether keys are needed."""
    from sqlalchemy.engine import make_url

    url = base_url(settings.host, port)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("UI", Text(f"{url}/", style="bold cyan"))
    grid.add_row("API docs", Text(f"{url}/docs"))
    grid.add_row("Home", Text(str(settings.home.resolve())))
    database = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
    grid.add_row("Metadata", Text(database))
    grid.add_row("Artifacts", Text(settings.resolved_artifact_root))
    if settings.auth_required:
        auth = Text("on: every request needs an API key", style="green")
    else:
        auth = Text("off: loopback only, no API key needed", style="yellow")
    grid.add_row("Auth", auth)
    if workers > 1:
        grid.add_row("Workers", Text(f"{workers} processes, connections spread by the kernel"))
    if settings.host.strip("[]") in ("0.0.0.0", "::"):
        grid.add_row("", Text("listening on every address of this machine", style="dim"))
    return Panel(
        grid,
        title=f"passerelle {__version__}",
        title_align="left",
        subtitle="Ctrl+C to stop",
        subtitle_align="right",
        expand=False,
    )
