"""Assertions and small builders shared by the API tests."""

from __future__ import annotations

from typing import Any

import httpx

ERROR_KEYS = {"code", "message", "field", "details"}


def error_shape_problems(body: Any) -> list[str]:
    """What is wrong with ``body`` as the one error shape (empty when it is right)."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return [f"the body must be exactly {{'error': {{...}}}}, got {str(body)[:200]}"]
    err = body["error"]
    if not isinstance(err, dict):
        return [f"'error' must be an object, got {type(err).__name__}"]
    problems = []
    if not isinstance(err.get("code"), str) or not err.get("code"):
        problems.append(f"'error.code' must be a non-empty string, got {err.get('code')!r}")
    if not isinstance(err.get("message"), str) or not err.get("message"):
        problems.append(f"'error.message' must be a non-empty string, got {err.get('message')!r}")
    if "field" in err and not isinstance(err["field"], str):
        problems.append(f"'error.field' must be a string when present, got {err['field']!r}")
    if extra := set(err) - ERROR_KEYS:
        problems.append(f"unexpected keys in 'error': {sorted(extra)}")
    return problems


def assert_error(
    resp: httpx.Response,
    status: int,
    code: str | None = None,
    *,
    field: str | None = None,
    contains: tuple[str, ...] | str = (),
) -> dict[str, Any]:
    """The response is a ``status`` error in the one shape, with this code, field and wording."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    problems = error_shape_problems(body)
    assert not problems, problems
    err = body["error"]
    if code is not None:
        assert err["code"] == code, err
    if field is not None:
        assert err.get("field") == field, err
    for text in (contains,) if isinstance(contains, str) else contains:
        assert text in err["message"], err
    return err


def create_run(client: Any, **fields: Any) -> dict[str, Any]:
    """Create a run (in experiment ``exp`` unless told otherwise) and return it."""
    fields.setdefault("experiment", "exp")
    resp = client.post("/api/v1/runs", json=fields)
    assert resp.status_code == 201, resp.text
    return resp.json()


def get_run(client: Any, run_id: str) -> dict[str, Any]:
    resp = client.get(f"/api/v1/runs/{run_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()
