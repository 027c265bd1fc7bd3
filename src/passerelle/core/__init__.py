"""Shared pieces every domain stands on: settings, database, object store, auth, errors."""
