"""Attribute names of the conventions the receiver understands, and how they map.

Three vocabularies describe the same things: passerelle's own SDK attributes, the OpenTelemetry
GenAI semantic conventions (``gen_ai.*``, current and older names) and the OpenInference
conventions (``llm.*``, ``openinference.span.kind``). Whatever a span says in any of them ends
up in the same observation columns; every attribute not listed here is kept as metadata.
"""

from __future__ import annotations

import re

OPENINFERENCE_KINDS = {
    "LLM": "generation",
    "EMBEDDING": "generation",
    "RETRIEVER": "retrieval",
    "RERANKER": "retrieval",
    "TOOL": "tool",
    "CHAIN": "span",
    "AGENT": "span",
    "GUARDRAIL": "span",
    "EVALUATOR": "span",
}

GENAI_OPERATIONS = {
    "chat": "generation",
    "text_completion": "generation",
    "generate_content": "generation",
    "embeddings": "generation",
    "execute_tool": "tool",
    "invoke_agent": "span",
    "create_agent": "span",
}

# Each observation field, read from the first of these attributes that is present.
MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
INPUT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
CACHED_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
TOTAL_TOKENS = (
    "passerelle.usage.total_tokens",
    "gen_ai.usage.total_tokens",
    "llm.token_count.total",
)
COST = ("passerelle.cost.total", "llm.cost.total", "gen_ai.usage.cost")
TTFT = ("passerelle.ttft_ms",)
PROMPT_NAME = ("passerelle.prompt.name", "llm.prompt_template.name")
PROMPT_VERSION = ("passerelle.prompt.version", "llm.prompt_template.version")
LEVEL = ("passerelle.level",)
TYPE = ("passerelle.observation.type",)
INPUT = ("input.value",)
OUTPUT = ("output.value",)
INPUT_MESSAGES = ("gen_ai.input.messages",)
OUTPUT_MESSAGES = ("gen_ai.output.messages",)
SYSTEM_INSTRUCTIONS = ("gen_ai.system_instructions",)
LEGACY_PROMPT = ("gen_ai.prompt",)
LEGACY_COMPLETION = ("gen_ai.completion",)
MODEL_PARAMETERS_JSON = ("passerelle.model_parameters", "llm.invocation_parameters")
MODEL_PARAMETER_PREFIX = "gen_ai.request."

# Trace-level attributes, taken from any span of the trace (its root first).
TRACE_NAME = ("passerelle.trace.name",)
SESSION = ("session.id", "gen_ai.conversation.id")
USER = ("user.id", "enduser.id")
TAGS = ("passerelle.trace.tags", "tag.tags")
TRACE_METADATA = ("passerelle.trace.metadata", "metadata")
RELEASE = ("passerelle.release",)
RESOURCE_RELEASE = "service.version"

OBSERVATION_METADATA = "passerelle.metadata"
CONSUMED_WITHOUT_FIELD = (
    "input.mime_type",
    "output.mime_type",
    "openinference.span.kind",
    "gen_ai.operation.name",
)

# ``gen_ai.prompt.0.content``, ``llm.input_messages.1.message.role``...: chat messages spread
# over flat attributes by older instrumentations.
FLAT_MESSAGE = re.compile(
    r"^(gen_ai\.prompt|gen_ai\.completion|llm\.input_messages|llm\.output_messages)"
    r"\.(\d+)\.(?:message\.)?(.+)$"
)
FLAT_INPUT = ("gen_ai.prompt", "llm.input_messages")

# Span events of the GenAI conventions that carry the conversation.
INPUT_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
LEGACY_PROMPT_EVENT = "gen_ai.content.prompt"
LEGACY_COMPLETION_EVENT = "gen_ai.content.completion"
EXCEPTION_EVENT = "exception"
