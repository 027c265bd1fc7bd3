"""Projects and API keys: who may do what, where."""
