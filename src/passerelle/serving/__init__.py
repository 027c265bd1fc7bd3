"""Serving: endpoints, traffic routing (canary, shadow), inference log and feedback."""
