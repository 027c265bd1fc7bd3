"""The serving floor: the least a Python HTTP server can do per prediction on this machine.

    FLOOR_MODEL=/path/model.pkl uv run uvicorn serving_floor:app --app-dir bench \
        --host 127.0.0.1 --port 8100 --workers 1 --no-access-log

A bare Starlette app on uvicorn: read the body, parse it with orjson, build a float64 array in
the model's column order, call the scikit-learn estimator's ``predict`` inline on the event loop
(no thread hop, no validation, no log), answer ``{"predictions": [...]}`` serialised by orjson.
It takes the bodies passerelle takes (``{"inputs": [records]}`` or ``{"inputs": {column:
[values]}}``) and MLflow's ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``.

``FLOOR_NODELAY=1`` sets TCP_NODELAY on every accepted connection. uvicorn with ``--workers``
above 1 binds the listening socket itself, asyncio then leaves Nagle's algorithm on, and each
keep-alive request after the first waits about 44 ms for a delayed ACK
(https://github.com/Kludex/uvicorn/issues/3149).
"""

from __future__ import annotations

import os
import pickle
import socket
import warnings

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if os.environ.get("FLOOR_NODELAY") == "1":
    from uvicorn.protocols.http.h11_impl import H11Protocol

    _connection_made = H11Protocol.connection_made

    def _nodelay_connection_made(self, transport):  # type: ignore[no-untyped-def]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _connection_made(self, transport)

    H11Protocol.connection_made = _nodelay_connection_made

with open(os.environ["FLOOR_MODEL"], "rb") as fh:
    MODEL = pickle.load(fh)  # a scikit-learn estimator the benchmark itself wrote
COLUMNS = [str(c) for c in MODEL.feature_names_in_]
# fitted on a DataFrame, fed an ndarray: silence the per-call warning about feature names
warnings.filterwarnings("ignore", message="X does not have valid feature names")


def _matrix(body: dict) -> np.ndarray:
    if "dataframe_split" in body:
        return np.asarray(body["dataframe_split"]["data"], dtype=np.float64)
    inputs = body["inputs"]
    if isinstance(inputs, dict):
        return np.asarray([inputs[c] for c in COLUMNS], dtype=np.float64).T
    return np.asarray([[r[c] for c in COLUMNS] for r in inputs], dtype=np.float64)


async def predict(request: Request) -> Response:
    body = orjson.loads(await request.body())
    predictions = MODEL.predict(_matrix(body))
    return Response(
        orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
    )


async def ping(_: Request) -> Response:
    return Response(b"{}", media_type="application/json")


app = Starlette(
    routes=[
        Route("/predict", predict, methods=["POST"]),
        Route("/invocations", predict, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
    ]
)
