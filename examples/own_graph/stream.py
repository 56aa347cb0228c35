"""The writer-critic graph, streamed: each model token as it is written, each node's update as a
line, then the run's result. The run is recorded as `run` records it. From this folder:

    python stream.py "Why is the sky blue?"
    rolegraph replay last
"""

import asyncio
import sys

from writer_critic import Question, writer_critic

import rolegraph as rg


async def main(question: str) -> None:
    async with rg.Runtime.load() as rt:  # rolegraph.toml if present, else the embedded CPU model
        stream = writer_critic.astream(Question(question=question), runtime=rt, stream_mode=["messages", "updates"])
        async for mode, chunk in stream:
            if mode == "messages":
                token, _where = chunk  # a LangChain AIMessageChunk, and its node's metadata
                print(token.content, end="", flush=True)
            else:
                print(f"\n[{', '.join(chunk)} done] {chunk}")
        result = stream.result
    print(f"\n{result.draft!r} (approved: {result.approved}, run {result.run_id})")


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "Why is the sky blue?"))
