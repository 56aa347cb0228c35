"""Ask VideoMind a question about a generated video with a known event, from Python. With the
text-only embedded model the frame-description tool stands in for vision (the result says so).

    .venv/bin/python examples/videomind_question.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rolegraph import Runtime
from rolegraph.envs.videomind import iou
from rolegraph.graphs import videomind as vm
from rolegraph.tools.video import Scene, write_synthetic_video

video = Path(tempfile.mkdtemp()) / "three-scenes.mp4"
spans = write_synthetic_video(video, [Scene(seconds=4, colour="red"),
                                      Scene(seconds=4, colour="blue", shape="circle", shape_colour="yellow"),
                                      Scene(seconds=4, colour="green")])
question = vm.VideoQuestion(video=str(video), question="What colour is the background while the circle moves?",
                            options=["red", "blue", "green"])
with Runtime.load() as rt:
    result = vm.run_sync(question, runtime=rt)
print("mode:", result.mode, "| route:", " -> ".join(result.route), "| plan read:", result.plan_parsed)
if result.best_span:
    print("best moment:", result.best_span, f"(IoU with the truth {iou(result.best_span, spans[1]):.2f})")
print("answer:", result.answer_index, repr(result.answer_text), "| trace:", result.run_id)
