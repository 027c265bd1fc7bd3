"""The report of ``passerelle reproduce`` and the pure comparisons behind it.

A report is a list of checks in four sections (code, data, environment, metrics), each ``ok``,
``warning`` (worth knowing, does not fail), ``differs`` (fails) or ``skipped``. Nothing here
touches the network, git or the disk, so the rules are easy to read and to test.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from passerelle.core.errors import InvalidInput

OK, WARNING, DIFFERS, SKIPPED = "ok", "warning", "differs", "skipped"
SECTIONS = ("code", "data", "environment", "metrics")


class UsageError(InvalidInput):
    """The target or an option cannot be understood (the CLI exits with code 2)."""


@dataclass
class Check:
    """One comparison: what was recorded against what can be had now."""

    section: str
    name: str
    status: str
    detail: str


@dataclass
class Target:
    """What is reproduced: a version's or a run's lineage and metrics."""

    label: str
    run_id: str | None
    lineage: dict[str, Any]
    metrics: dict[str, Any]
    model: str | None = None
    version: int | None = None


@dataclass
class ReproduceReport:
    target: Target
    rerun: bool
    tolerance: float
    checks: list[Check] = field(default_factory=list)
    new_run_id: str | None = None
    rerun_output: str = ""

    @property
    def reproduces(self) -> bool:
        """True when no check differs: warnings and skipped checks do not fail."""
        return not any(c.status == DIFFERS for c in self.checks)

    def section(self, name: str) -> list[Check]:
        return [c for c in self.checks if c.section == name]

    def section_status(self, name: str) -> str:
        statuses = {c.status for c in self.section(name)}
        for status in (DIFFERS, WARNING, OK):
            if status in statuses:
                return status
        return SKIPPED

    def add(self, section: str, name: str, status: str, detail: str) -> None:
        self.checks.append(Check(section, name, status, detail))

    def to_dict(self) -> dict[str, Any]:
        t = self.target
        return {
            "target": t.label,
            "model": t.model,
            "version": t.version,
            "run_id": t.run_id,
            "rerun": self.rerun,
            "tolerance": self.tolerance,
            "reproduces": self.reproduces,
            "new_run_id": self.new_run_id,
            "sections": {
                s: {
                    "status": self.section_status(s),
                    "checks": [asdict(c) for c in self.section(s)],
                }
                for s in SECTIONS
            },
            "rerun_output": self.rerun_output,
        }


def short(digest: str | None, n: int = 8) -> str:
    return f"{digest[:n]}…" if digest else "-"


# -- packages and metrics ------------------------------------------------------------------------
def package_diff(recorded: bytes, current: bytes, limit: int = 6) -> str:
    """``numpy 1.26.4 → 2.0.1, +polars 1.0, -torch 2.3`` (at most ``limit`` items)."""

    def parse(text: bytes) -> dict[str, str]:
        out = {}
        for line in text.decode(errors="replace").splitlines():
            name, _, version = line.strip().partition("==")
            if name:
                out[name] = version
        return out

    old, new = parse(recorded), parse(current)
    items = [
        f"{n} {old[n]} → {new[n]}" for n in sorted(old.keys() & new.keys()) if old[n] != new[n]
    ]
    items += [f"+{n} {new[n]}" for n in sorted(new.keys() - old.keys())]
    items += [f"-{n} {old[n]}" for n in sorted(old.keys() - new.keys())]
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # "NaN", "Infinity", "-Infinity"
        except ValueError:
            return None
    return None


def compare_metrics(
    recorded: dict[str, Any],
    new: dict[str, Any],
    tolerance: float,
    ignore: tuple[str, ...] = (),
) -> list[Check]:
    """Each recorded metric against the rerun's latest value, within an absolute tolerance."""
    checks = []
    for key in sorted(recorded):
        if key in ignore:
            checks.append(Check("metrics", key, SKIPPED, f"{key}: ignored"))
            continue
        old = as_number(recorded[key])
        if key not in new:
            checks.append(Check("metrics", key, DIFFERS, f"{key}: not logged by the rerun"))
            continue
        value = as_number(new[key])
        if old is None or value is None:
            continue
        same = (math.isnan(old) and math.isnan(value)) or old == value
        delta = value - old if not same else 0.0
        if same or abs(delta) <= tolerance:
            checks.append(Check("metrics", key, OK, f"{key} {old:.6g} → {value:.6g}"))
        else:
            checks.append(
                Check(
                    "metrics",
                    key,
                    DIFFERS,
                    f"{key} {old:.6g} → {value:.6g} (Δ {delta:+.3g} > tolerance {tolerance:g})",
                )
            )
    for key in sorted(set(new) - set(recorded)):
        checks.append(Check("metrics", key, WARNING, f"{key}: new in the rerun ({new[key]})"))
    return checks
