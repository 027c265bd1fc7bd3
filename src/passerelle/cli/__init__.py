"""The ``passerelle`` command line: a thin front over the REST API (embedded or remote)."""
