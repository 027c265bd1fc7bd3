"""What every command shares: the global options and the one client built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from passerelle.sdk.client import Client

STATE_KEY = "passerelle.state"


@dataclass
class CliState:
    """The global ``--url``, ``--api-key`` and ``--home``; ``None`` means "from the environment"."""

    url: str | None = None
    api_key: str | None = None
    home: Path | None = None
    _client: Client | None = field(default=None, repr=False)

    def client(self) -> Client:
        """The client, built on first use so that ``--help`` never opens a database."""
        if self._client is None:
            self._client = open_client(self.url, self.api_key, self.home)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def open_client(url: str | None, api_key: str | None, home: Path | None) -> Client:
    """A remote client when a URL is set (flag or ``PASSERELLE_URL``), else an embedded one.

    The embedded client ignores the server's listening rules (``PASSERELLE_HOST``,
    ``PASSERELLE_AUTH``), so an operator can create the first API key on the server's machine
    even when the server's own environment says ``0.0.0.0``.
    """
    from passerelle.sdk.client import Client

    return Client(url=url, api_key=api_key, home=home)


def get_state(ctx: typer.Context) -> CliState:
    """The state the root callback stored; a fresh one when a sub-app is invoked on its own."""
    state = ctx.meta.get(STATE_KEY)
    if state is None:
        state = ctx.meta[STATE_KEY] = CliState()
        ctx.call_on_close(state.close)
    return state


def client(ctx: typer.Context) -> Client:
    return get_state(ctx).client()
