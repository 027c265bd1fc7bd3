"""``passerelle``: the root command, its global options, and the sub-commands assembled.

Every command but ``server`` goes through the REST API with ``passerelle.sdk.client.Client``:
embedded on the files under ``PASSERELLE_HOME`` when no URL is set, remote otherwise. Errors a
user can cause (a server error, an unreachable server, a bad setting) print one red line and exit
non-zero; only a bug in passerelle itself shows a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from passerelle import __version__
from passerelle.cli import admin, alerts, monitoring, registry, server, serving, tracking
from passerelle.cli.output import fail
from passerelle.cli.state import STATE_KEY, CliState


class PasserelleGroup(TyperGroup):
    """The root group: turns the errors a user can cause into ``error: ...`` and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        import httpx
        from pydantic import ValidationError

        from passerelle.core.errors import PasserelleError

        try:
            return super().invoke(ctx)
        except PasserelleError as exc:
            raise fail(exc.message, exc.field, code=1) from None
        except httpx.TransportError as exc:
            url = str(exc.request.url) if _has_request(exc) else "the server"
            raise fail(f"cannot reach {url}: {exc}", code=1) from None
        except ValidationError as exc:
            raise fail(f"invalid configuration: {_first_error(exc)}", code=2) from None


def _has_request(exc: Any) -> bool:
    try:
        exc.request  # noqa: B018 - httpx raises RuntimeError when the request is unset
    except RuntimeError:
        return False
    return True


def _first_error(exc: Any) -> str:
    """The first pydantic error as ``FIELD: message`` (settings come from the environment)."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    name = f"PASSERELLE_{loc.upper()}" if loc else "settings"
    return f"{name}: {err.get('msg')}"


app = typer.Typer(
    cls=PasserelleGroup,
    name="passerelle",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold API keys
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"passerelle {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="URL of a passerelle server (PASSERELLE_URL). Unset: work embedded on --home.",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            metavar="KEY",
            help="API key sent to the server (PASSERELLE_API_KEY).",
            show_default=False,
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            metavar="PATH",
            help="Folder of the embedded store (PASSERELLE_HOME, default ./.passerelle).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """passerelle: experiment tracking and the rest of the model lifecycle, self-hosted.

    With --url (or PASSERELLE_URL) commands talk to that server; without, they work embedded.
    """
    state = CliState(url=url, api_key=api_key, home=home)
    ctx.meta[STATE_KEY] = state
    ctx.call_on_close(state.close)


app.command("server")(server.serve)
app.add_typer(tracking.experiments_app, name="experiments")
app.add_typer(tracking.runs_app, name="runs")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(admin.projects_app, name="projects")
app.add_typer(registry.models_app, name="models")
app.command("reproduce")(registry.reproduce)
app.command("build")(registry.build)
app.command("deploy")(serving.deploy)
app.command("rollback")(serving.rollback)
app.add_typer(serving.deployments_app, name="deployments")
app.command("predict")(serving.predict)
app.add_typer(monitoring.monitor_app, name="monitor")
app.add_typer(alerts.alerts_app, name="alerts")


if __name__ == "__main__":
    app(prog_name="passerelle")
