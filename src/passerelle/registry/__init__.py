"""Model registry: registered models, versions with their lineage, aliases, safe packages."""
