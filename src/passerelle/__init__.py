"""passerelle: from the notebook to a versioned, monitored service, and back.

``import passerelle`` is cheap and has no side effect: it exposes the SDK only. The server's
dependencies load when the server, the CLI or the embedded store is first used.
"""

__version__ = "0.1.0"
