"""``passerelle monitor ...``: drift, live performance and reports of a deployed endpoint.

Thin fronts over the monitoring REST API, embedded or against a server like every command.
"""

from __future__ import annotations

import typer

monitor_app = typer.Typer(
    help="Monitoring of deployed endpoints: drift, performance, reports.",
    no_args_is_help=True,
    add_completion=False,
)
