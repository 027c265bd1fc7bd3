"""Write docs/settings.md from ``Settings.model_fields``: the one place settings are described.

    uv run python docs/gen_settings.py          # rewrite the page
    uv run python docs/gen_settings.py --check  # exit 1 when the page is stale

``tests/test_docs.py`` runs the same check, so a new setting cannot ship undocumented.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from passerelle.core.settings import Settings

PAGE = Path(__file__).with_name("settings.md")

# Settings that a command-line flag can also set (the flag wins over the variable).
CLI_FLAGS: dict[str, list[tuple[str, str]]] = {
    "home": [("", "--home"), ("server", "--home")],
    "host": [("server", "--host")],
    "port": [("server", "--port")],
    "url": [("", "--url")],
    "api_key": [("", "--api-key")],
}

INTRO = """\
# Settings

Everything passerelle does is configured by environment variables that start with
`PASSERELLE_`, read into one settings object. The same variables configure the server, the CLI
and the Python SDK, so a laptop, a CI job and a production cluster differ only by their
environment.

```bash
export PASSERELLE_HOME=/srv/passerelle      # where the embedded store lives
export PASSERELLE_HOST=0.0.0.0              # listen beyond this machine (needs API keys)
uv run passerelle server
```

Some settings can also be given as command-line flags; a flag wins over the variable. Sizes are in
bytes and durations in seconds. An invalid value (a port that is not a number, an admin key shorter
than 24 characters) stops the server with `error: invalid configuration: ...` and exit code 2.

This page is generated from the code by `docs/gen_settings.py`; a test fails when a setting is
missing from it.
"""


def default_text(value: Any) -> str:
    """How a default reads in the table: ``unset`` rather than ``None``, enums by value."""
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int) and value >= 1024**2:
        return f"`{value}` ({human_bytes(value)})"
    return f"`{value}`"


def human_bytes(value: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2)):
        if value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"


def flags_text(name: str) -> str:
    flags = CLI_FLAGS.get(name, [])
    if not flags:
        return ""
    return ", ".join(f"`passerelle {cmd} {flag}`".replace("  ", " ") for cmd, flag in flags)


def render() -> str:
    """The whole page, one row per field of ``Settings``, in declaration order."""
    prefix = Settings.model_config.get("env_prefix", "PASSERELLE_")
    lines = [
        INTRO,
        "| Variable | Default | Flag | Description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| `{prefix}{name.upper()}` | {default_text(field.default)} | {flags_text(name)} "
            f"| {description} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE} is stale: run `uv run python docs/gen_settings.py`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
