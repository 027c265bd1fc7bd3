"""passerelle: from the notebook to a versioned, monitored service, and back.

``import passerelle`` is cheap and has no side effect: it exposes the SDK only, and loads each
part on first use. The server's dependencies load when the server, the CLI or the embedded store
is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "passerelle.sdk.client",
    "set_default_client": "passerelle.sdk.client",
    "ActiveRun": "passerelle.sdk.runs",
    "start_run": "passerelle.sdk.runs",
    "end_run": "passerelle.sdk.runs",
    "active_run": "passerelle.sdk.runs",
    "log_param": "passerelle.sdk.runs",
    "log_params": "passerelle.sdk.runs",
    "log_metric": "passerelle.sdk.runs",
    "log_metrics": "passerelle.sdk.runs",
    "set_tag": "passerelle.sdk.runs",
    "set_tags": "passerelle.sdk.runs",
    "log_artifact": "passerelle.sdk.runs",
    "log_dataset": "passerelle.sdk.runs",
    "Run": "passerelle.sdk.views",
    "get_run": "passerelle.sdk.views",
    "search_runs": "passerelle.sdk.views",
    "PasserelleError": "passerelle.core.errors",
    "ModelVersion": "passerelle.sdk.registry",
    "log_model": "passerelle.sdk.registry",
    "register_model": "passerelle.sdk.registry",
    "set_alias": "passerelle.sdk.registry",
    "get_model_version": "passerelle.sdk.registry",
    "download_model": "passerelle.sdk.registry",
    "load_model": "passerelle.sdk.registry",
    "deploy": "passerelle.sdk.serving",
    "rollback": "passerelle.sdk.serving",
    "predict": "passerelle.sdk.serving",
    "inference_log": "passerelle.sdk.serving",
    "feedback": "passerelle.sdk.serving",
    "feedback_many": "passerelle.sdk.serving",
    "observe": "passerelle.sdk.tracing.observe",
    "trace": "passerelle.sdk.tracing.tracer",
    "span": "passerelle.sdk.tracing.tracer",
    "score": "passerelle.sdk.tracing.tracer",
    "flush": "passerelle.sdk.tracing.tracer",
    "tracing_stats": "passerelle.sdk.tracing.tracer",
    "Tracer": "passerelle.sdk.tracing.tracer",
    "set_default_tracer": "passerelle.sdk.tracing.tracer",
    "SpanExporter": "passerelle.sdk.tracing.exporter",
    "get_current_trace_id": "passerelle.sdk.tracing.context",
    "get_current_observation": "passerelle.sdk.tracing.context",
    "redact_keys": "passerelle.sdk.tracing.capture",
    "openai": "passerelle.sdk.tracing",
    "performance": "passerelle.sdk.monitoring",
    "canary_analysis": "passerelle.sdk.monitoring",
    "set_canary_policy": "passerelle.sdk.monitoring",
    "add_alert": "passerelle.sdk.monitoring",
    "list_alerts": "passerelle.sdk.monitoring",
    "remove_alert": "passerelle.sdk.monitoring",
    "reference": "passerelle.sdk.monitoring",
    "drift": "passerelle.sdk.monitoring",
}

__all__ = [
    "ActiveRun",
    "Client",
    "ModelVersion",
    "PasserelleError",
    "Run",
    "SpanExporter",
    "Tracer",
    "__version__",
    "active_run",
    "add_alert",
    "canary_analysis",
    "deploy",
    "download_model",
    "drift",
    "end_run",
    "feedback",
    "feedback_many",
    "flush",
    "get_current_observation",
    "get_current_trace_id",
    "get_model_version",
    "get_run",
    "inference_log",
    "list_alerts",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "observe",
    "openai",
    "performance",
    "predict",
    "redact_keys",
    "reference",
    "register_model",
    "remove_alert",
    "rollback",
    "score",
    "search_runs",
    "set_alias",
    "set_canary_policy",
    "set_default_client",
    "set_default_tracer",
    "set_tag",
    "set_tags",
    "span",
    "start_run",
    "trace",
    "tracing_stats",
]

if TYPE_CHECKING:
    from passerelle.core.errors import PasserelleError
    from passerelle.sdk.client import Client, set_default_client
    from passerelle.sdk.monitoring import (
        add_alert,
        canary_analysis,
        drift,
        list_alerts,
        performance,
        reference,
        remove_alert,
        set_canary_policy,
    )
    from passerelle.sdk.registry import (
        ModelVersion,
        download_model,
        get_model_version,
        load_model,
        log_model,
        register_model,
        set_alias,
    )
    from passerelle.sdk.runs import (
        ActiveRun,
        active_run,
        end_run,
        log_artifact,
        log_dataset,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        set_tag,
        set_tags,
        start_run,
    )
    from passerelle.sdk.serving import (
        deploy,
        feedback,
        feedback_many,
        inference_log,
        predict,
        rollback,
    )
    from passerelle.sdk.tracing import openai
    from passerelle.sdk.tracing.capture import redact_keys
    from passerelle.sdk.tracing.context import get_current_observation, get_current_trace_id
    from passerelle.sdk.tracing.exporter import SpanExporter
    from passerelle.sdk.tracing.observe import observe
    from passerelle.sdk.tracing.tracer import (
        Tracer,
        flush,
        score,
        set_default_tracer,
        span,
        trace,
        tracing_stats,
    )
    from passerelle.sdk.views import Run, get_run, search_runs


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'passerelle' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
