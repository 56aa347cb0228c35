"""`rolegraph run --stream`: runs shown on a terminal as they go, the model's tokens as they come and
each node's update as a line (on stderr, where the progress bar would be: stdout keeps the summary)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from rolegraph._langgraph import NODE
from rolegraph.errors import one_line
from rolegraph.graphs._result import RunFailure

if TYPE_CHECKING:
    from rolegraph.graphs._api import Graph
    from rolegraph.runtime import Runtime

MODES = ("messages", "updates")
LINE = 200
"""The most characters of an update shown on its line."""


class StreamPrinter:
    """Prints one streamed run's chunks (`messages` and `updates`, with subgraph namespaces)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._speaker: str | None = None
        self._midline = False

    def __call__(self, namespace: tuple[str, ...], mode: str, chunk: Any) -> None:
        where = "/".join(part.split(":", 1)[0] for part in namespace)
        if mode == "messages":
            message, meta = chunk
            self._message(message, meta, where)
        elif mode == "updates" and isinstance(chunk, dict):
            for node, update in chunk.items():
                self._line(f"[green]✓[/] [bold]{escape('/'.join(filter(None, (where, str(node)))))}[/] "
                           f"{escape(_short(update))}")

    def _message(self, message: Any, meta: dict[str, Any], where: str) -> None:
        text = message.content if isinstance(message.content, str) else ""
        kind = getattr(message, "type", "")
        if kind not in ("ai", "AIMessageChunk"):  # a tool's answer or another message a node returned
            if text:
                self._line(f"[dim]{escape(kind)}:[/] {escape(_short(text))}")
            return
        if not text:
            return
        if message.id != self._speaker:
            node = "/".join(filter(None, (where, str(meta.get(NODE, "")))))
            role = meta.get("rolegraph_role") or meta.get("ls_model_name") or ""
            self._line(f"[cyan]{escape(node)}[/]" + (f" [dim]({escape(str(role))})[/]" if role else "") + " ", end="")
            self._speaker = message.id
        self.console.file.write(text)
        self.console.file.flush()
        self._midline = not text.endswith("\n")

    def _line(self, markup: str, end: str = "\n") -> None:
        if self._midline:
            self.console.file.write("\n")
        self.console.print(markup, end=end, highlight=False, soft_wrap=True)
        self._midline = end != "\n"
        if end == "\n":
            self._speaker = None

    def done(self) -> None:
        if self._midline:
            self.console.file.write("\n")
            self._midline = False
        self.console.file.flush()


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= LINE else text[:LINE - 1] + "…"


async def streamed_runs(graph: Graph[Any], inputs: Iterable[Any], *, runtime: Runtime, seeds: list[int],
                        options: Any, console: Console) -> AsyncIterator[tuple[int, int, Any]]:
    """`Graph.run_batch`, one run at a time (so one run's tokens read as text), each shown on `console`
    as it goes; a run that fails is yielded as a `RunFailure`, and the others go on."""
    for index, value in enumerate(inputs):
        for seed in seeds:
            console.rule(f"{escape(graph.name)} · line {index + 1} · seed {seed}", style="dim")
            printer = StreamPrinter(console)
            result: Any
            try:
                stream = graph.astream(value, runtime=runtime, seed=seed, options=options, stream_mode=list(MODES),
                                       subgraphs=True)
                async for namespace, mode, chunk in stream:
                    printer(namespace, mode, chunk)
                result = stream.result
            except Exception as exc:  # noqa: BLE001 - this run's failure, recorded; the others go on
                result = RunFailure(error=f"{type(exc).__name__}: {one_line(exc)}")
            printer.done()
            status = getattr(result, "status", "error")
            console.print(f"[dim]{escape(graph.name)} line {index + 1}/seed {seed}: {escape(str(status))}"
                          + (f" ({escape(str(result.run_id))})" if getattr(result, "run_id", None) else "") + "[/]",
                          highlight=False)
            yield index, seed, result
