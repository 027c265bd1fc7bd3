"""``passerelle keys ...`` and ``passerelle projects ...``: administration through the REST API.

With no URL these run embedded on ``PASSERELLE_HOME``, which is how an operator creates the first
API key on the server's machine before the server listens beyond loopback.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.text import Text

from passerelle.cli.output import (
    MISSING,
    cell,
    console,
    err_console,
    fmt_time,
    new_table,
    print_json,
)
from passerelle.cli.state import client

keys_app = typer.Typer(
    help="API keys: create, list and revoke (admin).", no_args_is_help=True, add_completion=False
)
projects_app = typer.Typer(
    help="Projects: every experiment and run belongs to one.",
    no_args_is_help=True,
    add_completion=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


class RoleChoice(StrEnum):
    """The roles of ``passerelle.core.auth.Role``, listed here so ``--help`` stays cheap."""

    admin = "admin"
    editor = "editor"
    viewer = "viewer"
    annotator = "annotator"


# -- keys --------------------------------------------------------------------------------------
@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Option(
            "--name",
            metavar="NAME",
            help="What the key is for, e.g. 'ci' or 'alice'.",
            show_default=False,
        ),
    ],
    role: Annotated[
        RoleChoice,
        typer.Option(
            "--role",
            metavar="ROLE",
            help="admin: everything; editor: read and write a project; viewer: read it; "
            "annotator: read it and write scores.",
            show_default=False,
        ),
    ],
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            metavar="NAME",
            help="The project the key grants (admins may omit it).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key. Its secret is printed once: store it now."""
    body = {"name": name, "role": role.value, "project": project}
    key = client(ctx).request("POST", "/api/v1/keys", json=body)
    if as_json:
        print_json(key)
        return
    scope = key["project"] or "every project"
    text = Text()
    text.append(f"key {key['id']} '{key['name']}': {key['role']} on {scope}\n\n")
    text.append(key["secret"], style="bold")
    console().print(Panel(text, title="API key created", title_align="left", expand=False))
    err_console().print(
        "Store this secret now: it is kept only as a hash and cannot be shown again. "
        "Send it as 'Authorization: Bearer <key>' or set PASSERELLE_API_KEY.",
        style="yellow",
        markup=False,
    )


@keys_app.command("list")
def list_keys(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List API keys (never their secrets: only the first characters, to recognise them)."""
    keys: list[dict[str, Any]] = client(ctx).request("GET", "/api/v1/keys")
    if as_json:
        print_json(keys)
        return
    table = new_table(caption=f"{len(keys)} key(s)")
    table.add_column("ID", justify="right")
    table.add_column("Name", style="bold")
    table.add_column("Prefix", style="dim")
    table.add_column("Role")
    table.add_column("Project")
    table.add_column("Created")
    table.add_column("State")
    for k in keys:
        state = (
            Text(f"revoked {fmt_time(k['revoked_at'])}", style="red")
            if k["revoked_at"]
            else Text("active", style="green")
        )
        table.add_row(
            str(k["id"]),
            cell(k["name"]),
            cell(k["prefix"] + "..."),
            k["role"],
            cell(k["project"] or MISSING),
            fmt_time(k["created_at"]),
            state,
        )
    console().print(table)


@keys_app.command("revoke")
def revoke_key(
    ctx: typer.Context,
    key_id: Annotated[
        int, typer.Argument(metavar="KEY_ID", help="The key's ID (see `keys list`).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key: every request made with it is refused from now on."""
    key = client(ctx).request("DELETE", f"/api/v1/keys/{key_id}")
    if as_json:
        print_json(key)
        return
    console().print(
        Text(f"revoked key {key['id']} '{key['name']}' ({key['prefix']}...)", style="green")
    )


# -- projects ----------------------------------------------------------------------------------
@projects_app.command("list")
def list_projects(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the projects you can see."""
    projects: list[dict[str, Any]] = client(ctx).request("GET", "/api/v1/projects")
    if as_json:
        print_json(projects)
        return
    table = new_table(caption=f"{len(projects)} project(s)")
    table.add_column("ID", justify="right")
    table.add_column("Name", style="bold")
    table.add_column("Description", overflow="fold")
    table.add_column("Created")
    for p in projects:
        table.add_row(
            str(p["id"]), cell(p["name"]), cell(p["description"]), fmt_time(p["created_at"])
        )
    console().print(table)


@projects_app.command("create")
def create_project(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Letters, digits, '.', '_' and '-'.")],
    description: Annotated[
        str, typer.Option("--description", "-d", metavar="TEXT", help="What the project holds.")
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a project (admin)."""
    body = {"name": name, "description": description}
    project = client(ctx).request("POST", "/api/v1/projects", json=body)
    if as_json:
        print_json(project)
        return
    console().print(
        Text(f"created project '{project['name']}' (id {project['id']})", style="green")
    )
