"""The Python SDK: a thin front over the REST API, embedded or against a server."""
