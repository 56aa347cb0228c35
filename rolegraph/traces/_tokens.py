"""A model call's answer streamed to whoever listens to the graph node it runs in: LangGraph's
`messages` stream mode (and `astream_events`) listen through LangChain callbacks on the node's
config, so a rolegraph call reports itself there as a chat model run would: start, each piece of
text as `on_llm_new_token`, the end. Nobody listening, nothing is made and the call is a plain one."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.runnables.config import get_async_callback_manager_for_config

from rolegraph._langgraph import listens_for_tokens
from rolegraph.models import ChatRequest, ChatResponse, Message


def message_id(node_key: str, index: int) -> str:
    """The id a call's streamed message carries: its place in the run, so a replay streams the same ids."""
    return f"rg-{node_key}-{index}"


class NodeTokens:
    """One model call reported to the listeners of its node (`open` makes one when someone listens)."""

    def __init__(self, config: Any, role: str, request: ChatRequest, message: str) -> None:
        self.config, self.role, self.request, self.id = config, role, request, message
        self.run: Any = None

    @classmethod
    def open(cls, config: Any, role: str, request: ChatRequest, message: str) -> NodeTokens | None:
        """A reporter for the call, or None when no one listens to the node's tokens."""
        callbacks = config.get("callbacks") if isinstance(config, dict) else None
        return cls(config, role, request, message) if listens_for_tokens(callbacks) else None

    async def start(self) -> None:
        manager = get_async_callback_manager_for_config(self.config)
        manager.add_metadata({"rolegraph_role": self.role}, inherit=False)
        runs = await manager.on_chat_model_start(
            {"name": f"rolegraph:{self.role}"}, [[_message(m) for m in self.request.messages]],
            name=self.role, invocation_params=self.request.model_dump(mode="json", exclude={"messages"}))
        self.run = runs[0]

    async def token(self, text: str) -> None:
        """One piece of the answer's text."""
        chunk = AIMessageChunk(content=text, id=self.id)
        await self.run.on_llm_new_token(text, chunk=ChatGenerationChunk(message=chunk))

    async def end(self, response: ChatResponse) -> None:
        """The answer is whole: a last piece with what the text pieces lack (tool calls, usage, the
        finish reason), so the pieces add up to the answer's message; then the run's end."""
        usage = response.usage
        last = AIMessageChunk(
            content="", id=self.id,
            tool_call_chunks=[{"name": c.name, "args": c.arguments, "id": c.id, "index": i, "type": "tool_call_chunk"}
                              for i, c in enumerate(response.tool_calls)],
            usage_metadata={"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
                            "total_tokens": usage.total_tokens},
            response_metadata={"finish_reason": response.finish_reason, "model_name": response.model},
            chunk_position="last")
        await self.run.on_llm_new_token("", chunk=ChatGenerationChunk(message=last))
        whole = AIMessage(content=response.text, id=self.id, tool_calls=last.tool_calls,
                          invalid_tool_calls=last.invalid_tool_calls, usage_metadata=last.usage_metadata,
                          response_metadata=last.response_metadata)
        await self.run.on_llm_end(LLMResult(generations=[[ChatGeneration(message=whole)]]))

    async def fail(self, error: BaseException) -> None:
        await self.run.on_llm_error(error)


def _message(m: Message) -> BaseMessage:
    """A request's message as the LangChain message listeners are shown (its text)."""
    text = m.content or ""
    if m.role == "system":
        return SystemMessage(content=text)
    if m.role == "user":
        return HumanMessage(content=text)
    if m.role == "tool":
        return ToolMessage(content=text, tool_call_id=m.tool_call_id or "")
    return AIMessage(content=text)
