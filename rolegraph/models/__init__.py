"""Model clients: the ChatModel protocol, the OpenAI-compatible HTTP client, test doubles."""

from rolegraph.models._decode import UnsafeJSON, clean_value, decode_json
from rolegraph.models._dialects import Dialect, constrain_schema
from rolegraph.models._endpoint import Endpoint, RetryPolicy
from rolegraph.models._openai import OpenAICompatModel
from rolegraph.models._stream import StreamReader
from rolegraph.models._testing import FunctionModel, ScriptedModel
from rolegraph.models._types import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    Message,
    TokenLogprob,
    TokenSink,
    ToolCall,
    ToolSpec,
    TransportRetry,
    Usage,
    chat_streamed,
)

__all__ = [
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "Dialect",
    "Endpoint",
    "FunctionModel",
    "Message",
    "OpenAICompatModel",
    "RetryPolicy",
    "ScriptedModel",
    "StreamReader",
    "TokenLogprob",
    "TokenSink",
    "ToolCall",
    "ToolSpec",
    "TransportRetry",
    "UnsafeJSON",
    "Usage",
    "chat_streamed",
    "clean_value",
    "constrain_schema",
    "decode_json",
]
