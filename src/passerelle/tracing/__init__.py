"""LLM tracing: traces, observations, scores, OTLP ingestion through the spool, costs."""
