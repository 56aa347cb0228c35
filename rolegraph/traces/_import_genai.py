"""What one imported span says about a model or tool call, read by convention: OpenTelemetry GenAI
(`gen_ai.*` attributes, the older prompt/completion attributes and span events) and OpenInference
(`llm.*`, `tool.*`, `input.value`/`output.value`). Each reader also names the attributes it used, so
the rest are kept raw."""

from __future__ import annotations

import json
import re
from typing import Any

from rolegraph.models import ChatRequest, ChatResponse, Message, ToolCall, ToolSpec, Usage
from rolegraph.traces._import_otlp import Span

_ROLES = {"human": "user", "user": "user", "ai": "assistant", "assistant": "assistant", "model": "assistant",
          "system": "system", "developer": "system", "tool": "tool", "function": "tool", "ipython": "tool"}
_INDEXED = re.compile(r"^(llm\.(?:input|output)_messages|gen_ai\.(?:prompt|completion))\.(\d+)\.(.+)$")
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})


def loads(value: Any) -> Any:
    """A JSON-looking string as its value; anything else as it is."""
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text(p.get("text", p.get("content")) if isinstance(p, dict) else p) for p in content)
    return json.dumps(content, ensure_ascii=False)


def _args(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value if value is not None else {}, ensure_ascii=False)


def _role(value: Any) -> Any:
    return _ROLES.get(str(value or "user").lower(), "user")


# -- OpenTelemetry GenAI ---------------------------------------------------------------------------


def _genai_message(m: dict[str, Any]) -> Message:
    """One message of `gen_ai.input.messages`/`gen_ai.output.messages` (role + typed parts), or of the
    older `{role, content, tool_calls}` shape."""
    role = _role(m.get("role"))
    texts: list[str] = []
    calls: list[ToolCall] = []
    answers: str | None = None
    for part in m.get("parts") or ():
        kind = part.get("type")
        if kind == "text" or kind == "reasoning":
            texts.append(_text(part.get("content")))
        elif kind == "tool_call":
            calls.append(ToolCall(id=str(part.get("id") or f"call_{len(calls)}"), name=str(part.get("name", "")),
                                  arguments=_args(part.get("arguments"))))
        elif kind == "tool_call_response":
            answers = str(part.get("id") or "")
            response = part.get("response", part.get("result"))
            texts.append(response if isinstance(response, str) else json.dumps(response, ensure_ascii=False))
    if "parts" not in m:
        texts.append(_text(m.get("content")))
        for i, c in enumerate(m.get("tool_calls") or ()):
            fn = c.get("function") or c
            calls.append(ToolCall(id=str(c.get("id") or f"call_{i}"), name=str(fn.get("name", "")),
                                  arguments=_args(fn.get("arguments"))))
        answers = m.get("tool_call_id") or m.get("id") if role == "tool" else None
    return Message(role=role, content="".join(texts), tool_calls=tuple(calls),
                   tool_call_id=answers if role == "tool" else None)


def _indexed(attrs: dict[str, Any], prefix: str, used: set[str]) -> list[dict[str, Any]]:
    """`prefix.N.rest` attributes grouped by N, in order: [{rest: value}]."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        found = _INDEXED.match(key)
        if found and found.group(1) == prefix:
            groups.setdefault(int(found.group(2)), {})[found.group(3)] = value
            used.add(key)
    return [groups[i] for i in sorted(groups)]


def _flat_message(fields: dict[str, Any], prefix: str = "") -> Message:
    """A message from flattened fields (`role`, `content`, `tool_calls.0.name`, ...), as OpenLLMetry
    writes `gen_ai.prompt.N.*` and OpenInference `llm.input_messages.N.message.*`."""
    f = {k.removeprefix(prefix): v for k, v in fields.items()}
    calls: dict[int, dict[str, Any]] = {}
    parts: dict[int, dict[str, Any]] = {}
    for key, value in f.items():
        head, _, rest = key.partition(".")
        if head in ("tool_calls", "contents") and rest:
            n, _, name = rest.partition(".")
            if n.isdigit():
                (calls if head == "tool_calls" else parts).setdefault(int(n), {})[name] = value
    tool_calls = []
    for i in sorted(calls):
        c = {k.removeprefix("tool_call."): v for k, v in calls[i].items()}
        tool_calls.append(ToolCall(id=str(c.get("id") or f"call_{i}"), name=str(c.get("function.name", c.get("name", ""))),
                                   arguments=_args(loads(c.get("function.arguments", c.get("arguments", "{}"))))))
    content = f.get("content")
    if content is None and parts:
        content = "".join(str(parts[i].get("message_content.text", "")) for i in sorted(parts))
    role = _role(f.get("role"))
    return Message(role=role, content=_text(loads(content) if isinstance(content, str) and content[:1] == "[" else content),
                   tool_calls=tuple(tool_calls), tool_call_id=f.get("tool_call_id") if role == "tool" else None)


def _event_messages(span: Span, used_events: list[int]) -> tuple[list[Message], list[Message], str | None]:
    """Messages from the older GenAI span events: `gen_ai.{system,user,assistant,tool}.message`,
    `gen_ai.choice`, and `gen_ai.content.prompt`/`gen_ai.content.completion`."""
    inputs: list[Message] = []
    outputs: list[Message] = []
    finish: str | None = None
    for i, e in enumerate(span.events):
        a = e.attributes
        if e.name in ("gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message", "gen_ai.tool.message"):
            body = loads(a.get("content", a.get("body", "")))
            fields = body if isinstance(body, dict) else {"content": body,
                                                          **{k: loads(v) for k, v in a.items() if k != "content"}}
            fields.setdefault("role", e.name.split(".")[1])
            inputs.append(_genai_message(fields))
        elif e.name == "gen_ai.choice":
            message = loads(a.get("message", a.get("body", "")))
            outputs.append(_genai_message(message if isinstance(message, dict) else {"role": "assistant", "content": message}))
            finish = finish or a.get("finish_reason")
        elif e.name == "gen_ai.content.prompt":
            for m in _as_list(loads(a.get("gen_ai.prompt", "[]"))):
                inputs.append(_genai_message(m))
        elif e.name == "gen_ai.content.completion":
            for m in _as_list(loads(a.get("gen_ai.completion", "[]"))):
                outputs.append(_genai_message(m if isinstance(m, dict) else {"role": "assistant", "content": m}))
        else:
            continue
        used_events.append(i)
    return inputs, outputs, finish


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [{"role": "user", "content": value}] if value else []


def _get(attrs: dict[str, Any], used: set[str], *keys: str) -> Any:
    for key in keys:
        if key in attrs:
            used.add(key)
            return attrs[key]
    return None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def model_call(span: Span) -> tuple[ChatRequest, ChatResponse | None, set[str], list[int]]:
    """The request and response an LLM span records (either convention, or both), the attribute keys
    it read and the span events it read."""
    a = span.attributes
    used: set[str] = {k for k in ("openinference.span.kind", "gen_ai.operation.name", "gen_ai.system",
                                   "gen_ai.provider.name", "llm.provider", "llm.system") if k in a}
    used_events: list[int] = []
    inputs = [_genai_message(m) for m in _as_list(loads(_get(a, used, "gen_ai.input.messages")))]
    system = loads(_get(a, used, "gen_ai.system_instructions"))
    if system:
        parts = system if isinstance(system, list) else [{"type": "text", "content": system}]
        inputs.insert(0, _genai_message({"role": "system", "parts": parts}))
    outputs = [_genai_message(m) for m in _as_list(loads(_get(a, used, "gen_ai.output.messages")))]
    if not inputs:
        inputs = [_flat_message(m, "message.") for m in _indexed(a, "llm.input_messages", used)]
    if not outputs:
        outputs = [_flat_message(m, "message.") for m in _indexed(a, "llm.output_messages", used)]
    if not inputs:
        inputs = [_flat_message(m) for m in _indexed(a, "gen_ai.prompt", used)]
    if not outputs:
        outputs = [_flat_message(m) for m in _indexed(a, "gen_ai.completion", used)]
    if not inputs and isinstance(a.get("gen_ai.prompt"), str):
        inputs = [_genai_message(m) for m in _as_list(loads(_get(a, used, "gen_ai.prompt")))]
    if not outputs and isinstance(a.get("gen_ai.completion"), str):
        outputs = [_genai_message(m if isinstance(m, dict) else {"role": "assistant", "content": m})
                   for m in _as_list(loads(_get(a, used, "gen_ai.completion")))]
    finish: Any = None
    if not inputs and not outputs:
        inputs, outputs, finish = _event_messages(span, used_events)
    params = loads(_get(a, used, "llm.invocation_parameters"))
    params = params if isinstance(params, dict) else {}
    tool_keys = sorted(k for k in a if k.startswith("llm.tools."))
    used.update(tool_keys)
    tools = [loads(a[k]) for k in tool_keys]
    defs = loads(_get(a, used, "gen_ai.tool.definitions"))
    tools += defs if isinstance(defs, list) else []
    specs = []
    for t in tools:
        fn = t.get("function", t) if isinstance(t, dict) else {}
        if isinstance(fn, dict) and fn.get("name"):
            specs.append(ToolSpec(name=str(fn["name"]), description=str(fn.get("description") or ""),
                                  parameters=fn.get("parameters") or {"type": "object", "properties": {}}))
    model = _get(a, used, "gen_ai.request.model", "llm.model_name") or params.get("model") or params.get("model_name")

    def setting(key: str, *names: str) -> Any:
        value = _get(a, used, *names)
        return value if value is not None else params.get(key)

    request = ChatRequest(
        messages=tuple(inputs), model=str(model) if model else None, tools=tuple(sorted(specs, key=lambda s: s.name)),
        temperature=setting("temperature", "gen_ai.request.temperature"), top_p=setting("top_p", "gen_ai.request.top_p"),
        max_tokens=setting("max_tokens", "gen_ai.request.max_tokens"), seed=setting("seed", "gen_ai.request.seed"))
    reasons = loads(_get(a, used, "gen_ai.response.finish_reasons", "llm.finish_reason"))
    if isinstance(reasons, list):
        reasons = reasons[0] if reasons else None
    answer = next((m for m in outputs if m.role == "assistant"), outputs[0] if outputs else None)
    usage = Usage(prompt_tokens=_int(_get(a, used, "gen_ai.usage.input_tokens", "llm.token_count.prompt",
                                          "gen_ai.usage.prompt_tokens")),
                  completion_tokens=_int(_get(a, used, "gen_ai.usage.output_tokens", "llm.token_count.completion",
                                              "gen_ai.usage.completion_tokens")))
    _get(a, used, "llm.token_count.total", "gen_ai.usage.total_tokens")
    response_model = _get(a, used, "gen_ai.response.model") or model or ""
    response = None
    if span.error is None or answer is not None:
        response = ChatResponse(text=(answer.content or "") if answer else "",
                                tool_calls=list(answer.tool_calls) if answer else [],
                                finish_reason=str(finish or reasons) if (finish or reasons) else None,
                                model=str(response_model), usage=usage, latency_s=max(0.0, span.end - span.start))
    return request, response, used, used_events


def has_content(request: ChatRequest, response: ChatResponse | None) -> bool:
    """Whether a call's span carried its messages (content capture on)."""
    return bool(request.messages) and (response is None or bool(response.text or response.tool_calls))


def tool_call(span: Span) -> tuple[str, Any, Any, set[str]]:
    """A TOOL / execute_tool span's name, input and output, and the attribute keys it read."""
    a = span.attributes
    used: set[str] = {k for k in ("openinference.span.kind", "gen_ai.operation.name", "input.mime_type",
                                   "output.mime_type") if k in a}
    name = _get(a, used, "tool.name", "gen_ai.tool.name") or span.name.removeprefix("execute_tool ").strip()
    value = loads(_get(a, used, "gen_ai.tool.call.arguments", "input.value"))
    output = _get(a, used, "gen_ai.tool.call.result", "output.value")
    if a.get("output.mime_type") == "application/json" or (isinstance(output, str) and output[:1] in ("{", "[")):
        output = loads(output)
    if isinstance(output, dict) and output.get("type") == "tool" and isinstance(output.get("data"), dict):
        output = output["data"].get("content")  # a LangChain ToolMessage: the tool's answer is its content
    _get(a, used, "gen_ai.tool.call.id", "gen_ai.tool.description", "tool.description")
    return str(name), value, output, used
