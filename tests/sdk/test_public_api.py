"""The SDK's public surface is pinned, and importing it is cheap."""

from __future__ import annotations

import subprocess
import sys

import passerelle

EXPECTED = {
    "ActiveRun",
    "Client",
    "ModelVersion",
    "download_model",
    "get_model_version",
    "load_model",
    "log_model",
    "register_model",
    "set_alias",
    "PasserelleError",
    "Run",
    "__version__",
    "active_run",
    "end_run",
    "get_run",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "search_runs",
    "set_default_client",
    "set_tag",
    "set_tags",
    "start_run",
    "deploy",
    "rollback",
    "predict",
    "inference_log",
    "feedback",
    "feedback_many",
    # tracing
    "observe",
    "trace",
    "span",
    "score",
    "flush",
    "tracing_stats",
    "Tracer",
    "set_default_tracer",
    "SpanExporter",
    "get_current_trace_id",
    "get_current_observation",
    "redact_keys",
    "openai",
    "performance",
    "canary_analysis",
    "set_canary_policy",
    "add_alert",
    "list_alerts",
    "remove_alert",
    "reference",
    "drift",
}


def test_public_names_are_pinned() -> None:
    assert set(passerelle.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(passerelle, name) is not None


def test_import_is_cheap_and_side_effect_free(tmp_path) -> None:
    code = (
        "import sys, passerelle; "
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'pandas', 'pyarrow', 'alembic') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert not (tmp_path / ".passerelle").exists()  # nothing written on import
