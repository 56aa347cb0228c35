"""A fork started from `rolegraph ui`'s page on the real embedded model: the steps before the fork
are answered from the trace, the rest go to the model server over HTTP with the prompt typed in
the page, and the new run opens beside its parent."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from rolegraph import Runtime
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.graphs import load_graph
from rolegraph.traces import ModelCall, TraceStore
from rolegraph.ui import create_app
from tests.unit.test_own_graph import make_graph


async def test_a_fork_from_the_page_calls_the_embedded_model_after_its_step(tmp_path: Path, embedded_url: str) -> None:
    path = make_graph(tmp_path / "user", "wc_ui_embedded")
    graph = load_graph(f"{path}:{path.stem}")
    config = RuntimeConfig(endpoints={"local": EndpointConfig(base_url=embedded_url)},
                           # seeded: the critic's JSON must fit its tokens, and an unseeded 135M model
                           # sometimes rambles past them (three cut-off answers fail the fork, as they should)
                           roles={"default": RoleConfig(endpoint="local", model="smollm2-135m", max_tokens=48, seed=0)})
    store = TraceStore(tmp_path / "runs")
    async with Runtime(config, traces=store) as rt:
        parent = await graph.run({"question": "What colour is the sky?", "seed": 1}, runtime=rt)
    recorded = store.load(parent.run_id or "")
    assert recorded.status == "ok"

    ui = TestClient(create_app(runs=store.root, evals=tmp_path / "evals", live=lambda: Runtime(config),
                               live_description=f"smollm2-135m at {embedded_url}"),
                    headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})  # as the page's form
    assert f"smollm2-135m at {embedded_url}" in ui.get(f"/runs/{recorded.run_id}").text
    prompt = "{% block user %}Reply with JSON. Is this answer to {{ question }} right? {{ draft }}{% endblock %}"
    sent = ui.post(f"/runs/{recorded.run_id}/fork", data={"step": "1", "role": "critic", "prompt": prompt},
                   follow_redirects=False)
    assert sent.status_code == 303
    ui.app.state.jobs.join(timeout=300)  # type: ignore[attr-defined]
    job = ui.get(sent.headers["location"] + ".json").json()
    assert job["state"] == "done", job["message"]

    fork = store.load(job["run_id"])
    calls = fork.of_kind(ModelCall)
    assert calls[0].replayed and calls[0].response == recorded.of_kind(ModelCall)[0].response
    live = [c for c in calls if not c.replayed]
    assert live and all(c.response is not None for c in live)
    assert live[0].role == "critic" and "Reply with JSON" in (live[0].request.messages[-1].content or "")
    page = ui.get("/compare", params={"a": recorded.run_id, "b": fork.run_id}).text
    assert 'id="row-1" class="differs first-divergence"' in page
