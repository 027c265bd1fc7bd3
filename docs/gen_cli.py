"""Write docs/cli.md from the CLI itself: every command's ``--help``, plus a few examples.

    uv run python docs/gen_cli.py          # rewrite the page
    uv run python docs/gen_cli.py --check  # exit 1 when the page is stale

The help is rendered as plain text at a fixed width, so the page only changes when a command
does. ``tests/test_docs.py`` runs the same check and fails when a command has no section.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from passerelle.cli.main import app

PAGE = Path(__file__).with_name("cli.md")
WIDTH = 88

INTRO = """\
# CLI reference

`passerelle` is installed with the package (`uv run passerelle ...` in a checkout). Apart from
`passerelle server`, every command is a thin front over the [REST API](tracking.md#rest-api):

- with no URL it works **embedded**, straight on the SQLite file and artifact folder under
  `PASSERELLE_HOME` (default `./.passerelle`), through the same handlers, checks and errors as a
  server;
- with `--url` (or `PASSERELLE_URL`) it talks to that server, sending `--api-key`
  (or `PASSERELLE_API_KEY`).

Global options go before the command: `passerelle --url http://host:5050 runs list churn`.

Tables are meant for people; add `--json` (where offered) for scripts. Exit codes:

| code | meaning |
|---|---|
| 0 | done |
| 1 | the request was refused (unknown run, malformed filter, missing or wrong API key...) \
or the server could not be reached; the reason is printed as `error: ...` |
| 2 | wrong usage (unknown option, missing argument), invalid configuration, or a server \
that refuses to start |

This page is generated from the commands' `--help` by `docs/gen_cli.py`; a test fails when it is
out of date.
"""

EXAMPLES: dict[str, str] = {
    "passerelle server": """\
uv run passerelle server                          # http://127.0.0.1:5050/, data in ./.passerelle
uv run passerelle server --port 8080 --home /srv/passerelle
PASSERELLE_ADMIN_KEY=... uv run passerelle server --host 0.0.0.0   # reachable from other machines
""",
    "passerelle experiments list": """\
passerelle experiments list
passerelle experiments list --project fraud --json
""",
    "passerelle runs list": """\
passerelle runs list churn
passerelle runs list churn --filter "metrics.f1 > 0.8 and params.penalty = 'l2'" \\
    --order-by "metrics.f1 DESC" --max-results 20
passerelle runs list churn --json | jq '.[].metrics.f1'
""",
    "passerelle runs show": """\
passerelle runs show 3f2a9c1d          # the short id printed by `runs list` is enough
passerelle runs show 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d --json
""",
    "passerelle runs compare": """\
passerelle runs compare 3f2a9c1d 7be01c44 0c9d2e11
passerelle runs compare 3f2a9c1d 7be01c44 --minimize latency_p95
""",
    "passerelle keys create": """\
# on the server's machine, before it listens beyond loopback:
PASSERELLE_HOME=/srv/passerelle passerelle keys create --role admin --name ops
# against a running server, with an admin key:
passerelle --url https://mlops.example.com --api-key "$ADMIN_KEY" \\
    keys create --role editor --project churn --name ci
""",
    "passerelle keys revoke": """\
passerelle keys list
passerelle keys revoke 3
""",
    "passerelle projects create": """\
passerelle projects create fraud --description "Card fraud models"
""",
}


def commands() -> Iterator[tuple[str, Any, Any]]:
    """Every command and group, depth first, as ``(full name, command, context)``."""
    root = typer.main.get_command(app)

    def walk(cmd: Any, path: list[str], parent: Any) -> Iterator[tuple[str, Any, Any]]:
        cmd.rich_markup_mode = None  # plain text: the page must not depend on the terminal
        ctx = cmd.context_class(
            cmd,
            info_name=path[-1],
            parent=parent,
            terminal_width=WIDTH,
            max_content_width=WIDTH,
            **cmd.context_settings,
        )
        yield " ".join(path), cmd, ctx
        for name in getattr(cmd, "list_commands", lambda _: [])(ctx):
            yield from walk(cmd.get_command(ctx, name), [*path, name], ctx)

    yield from walk(root, ["passerelle"], None)


def command_names() -> list[str]:
    return [name for name, _, _ in commands()]


def render() -> str:
    parts = [INTRO]
    for name, cmd, ctx in commands():
        level = "#" * min(name.count(" ") + 1, 3)
        if name == "passerelle":
            level, title = "##", "Global options"
        else:
            title = f"`{name}`"
        parts.append(f"{level} {title}\n")
        parts.append("```text\n" + cmd.get_help(ctx).rstrip() + "\n```\n")
        if name in EXAMPLES:
            parts.append("Examples:\n\n```bash\n" + EXAMPLES[name].rstrip() + "\n```\n")
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE} is stale: run `uv run python docs/gen_cli.py`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
