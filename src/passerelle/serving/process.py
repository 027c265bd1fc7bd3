"""How a serving process runs uvicorn: the settings every ``passerelle server`` process shares.

- Prediction requests are left out of the access log. Each is already in the inference log (with
  far more than a log line says) and counted at ``/metrics``; formatting and writing a line for
  each cost about a tenth of a one-row prediction. Every other request is logged as before.
- Once the deployed models are loaded, the heap is frozen out of the garbage collector's sight
  (see ``Warmer._freeze_heap``). Not done for apps built by ``create_app`` alone (tests build
  hundreds in one process, and frozen objects are never freed).
"""

from __future__ import annotations

import logging
from typing import Any

from passerelle.serving.metrics import prediction_endpoint


class _SkipPredictions(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            return prediction_endpoint(args[2].partition("?")[0]) is None
        return True


def uvicorn_config(app: Any, host: str, port: int) -> Any:
    """The uvicorn configuration of one serving process."""
    import uvicorn

    warmer = getattr(app.state, "warmer", None)
    if warmer is not None:
        warmer.freeze_heap = True
    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=10)
    access = logging.getLogger("uvicorn.access")  # configured by Config: add the filter after
    if not any(isinstance(f, _SkipPredictions) for f in access.filters):
        access.addFilter(_SkipPredictions())
    return config
