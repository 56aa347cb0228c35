"""One Being-0 episode in the simulated office, from Python: the embedded model plans (offered its
valid calls as an enum), the connector grounds each call into skills, and the episode is recorded
and rendered as a GIF.

    .venv/bin/python examples/being0_episode.py [TASK]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from rolegraph import Runtime
from rolegraph.evals.being0 import render_episode
from rolegraph.graphs import being0

task = sys.argv[1] if len(sys.argv) > 1 else "fetch_bottle"
with Runtime.load() as rt:  # rolegraph.toml if present, else the embedded CPU model
    result = being0.run_sync(task, runtime=rt, seed=0, options=being0.Being0Options(constrained=True, max_steps=6))
for r in result.records:
    print(f"{r.step + 1}. {r.action} -> {'ok' if r.ok else 'failed'}: {r.message} ({len(r.skills)} skills)")
print(f"success {result.success}, sub-tasks {result.subtasks_done}/{result.subtasks_total}, trace {result.run_id}")
print("GIF:", render_episode(result, Path(tempfile.mkdtemp()) / task))
