"""A damaged store recovers and a damaged trace is read for what it holds: the run index is a cache
of the run folders (rebuilt when damaged, on `trace reindex`, and never the reason a run fails); a
bad line in the middle of a log is reported and skipped; a log that disagrees with its checkpoint is
not resumed; an unfinished run is replayed as far as it was recorded, with nothing written."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rolegraph import Runtime, UserError
from rolegraph.graphs import refinebot, replay_run, resume_run
from rolegraph.graphs._replay import PartialReplay
from rolegraph.models import FunctionModel
from rolegraph.traces import ModelCall, NodeFinished, ReplayMismatch, RunResumed, TraceStore
from rolegraph.ui import create_app
from tests.unit.test_refinebot import MCQ_A
from tests.unit.test_resume import OPTIONS, TOTAL_CALLS, answer, kill_after
from tests.unit.test_trace_cli import cli
from tests.unit.test_traces import record


def damage(index: Path, how: str) -> None:
    """Damage a store's index as a crash, a full disk or a stray program would."""
    for suffix in ("-wal", "-shm"):  # the damage is in the main file, with no log to mend it
        index.with_name(index.name + suffix).unlink(missing_ok=True)
    if how == "not a database":
        index.write_bytes(b"this is no SQLite file\n" * 100)
    elif how == "malformed":  # the header intact, the pages after it garbage
        data = bytearray(index.read_bytes())
        data[100:] = b"\x5a" * (len(data) - 100)
        index.write_bytes(bytes(data))
    elif how == "table dropped":
        with sqlite3.connect(index) as con:
            con.execute("DROP TABLE runs")
    elif how == "truncated":
        index.write_bytes(index.read_bytes()[:1000])
    else:
        index.unlink()


def closed(store: TraceStore) -> TraceStore:
    if store._con is not None:  # as when the process that wrote the runs has exited
        store._con.close()
        store._con = None
    return store


@pytest.mark.parametrize("how", ["not a database", "malformed", "table dropped", "truncated", "deleted"])
async def test_a_corrupted_index_is_rebuilt_and_a_new_run_succeeds(tmp_path: Path, how: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    store, first = await record(tmp_path)
    runs = closed(store).root
    damage(runs / "index.sqlite", how)
    caplog.set_level(logging.WARNING, logger="rolegraph.traces")

    again = TraceStore(runs)
    (info,) = again.list()  # the intact run is listed, read again from its folder
    assert info.run_id == first.run_id and info.status == "ok" and info.graph == "refinebot"
    assert info.model_calls == 6 and info.tokens > 0 and "ATP" in info.summary
    if how in ("not a database", "malformed", "truncated"):
        (warning,) = [r.getMessage() for r in caplog.records if "index.sqlite" in r.getMessage()]
        assert f"{runs / 'index.sqlite'} was damaged" in warning and "rebuilt it from 1 run folders" in warning
        assert "\n" not in warning
    assert again.graphs() == ["refinebot"] and again.load("last").run_id == first.run_id
    assert not list(runs.glob("*.tmp"))  # the new index was built beside the old one and renamed over it

    _, second = await record(tmp_path)  # a new run: written, indexed, listed
    assert second.status == "ok" and second.run_id != first.run_id
    assert [r.run_id for r in TraceStore(runs).list()] == [second.run_id, first.run_id]
    with sqlite3.connect(runs / "index.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_an_index_damaged_under_an_open_store_is_rebuilt_by_its_next_run(tmp_path: Path,
                                                                               caplog: pytest.LogCaptureFixture) -> None:
    store = TraceStore(tmp_path / "runs")
    rt = Runtime.from_models({"default": FunctionModel(answer)}, traces=store)
    first = await refinebot.run(MCQ_A, runtime=rt, options=OPTIONS)
    closed(store)
    damage(store.root / "index.sqlite", "not a database")
    caplog.set_level(logging.WARNING, logger="rolegraph.traces")
    second = await refinebot.run(MCQ_A, runtime=rt, options=OPTIONS)  # the same store, its index gone bad in between
    assert second.status == "ok"
    assert any("was damaged" in r.getMessage() for r in caplog.records)
    assert {r.run_id for r in store.list()} == {first.run_id, second.run_id}
    assert {r.status for r in store.list()} == {"ok"}


async def test_a_run_whose_index_cannot_be_written_succeeds_and_is_indexed_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    store = TraceStore(tmp_path / "runs")

    def locked(self: TraceStore) -> sqlite3.Connection:
        raise sqlite3.OperationalError("database is locked")

    caplog.set_level(logging.WARNING, logger="rolegraph.traces")
    with monkeypatch.context() as m:
        m.setattr(TraceStore, "_index", locked)
        result = await refinebot.run(MCQ_A, runtime=Runtime.from_models({"default": FunctionModel(answer)},
                                                                         traces=store), options=OPTIONS)
    assert result.status == "ok" and result.run_id
    warnings = [r.getMessage() for r in caplog.records if "could not index" in r.getMessage()]
    assert len(warnings) == 2 and all("database is locked" in w and "trace reindex" in w for w in warnings)
    (info,) = TraceStore(store.root).list()  # another process lists the runs: the folder is indexed then
    assert info.run_id == result.run_id and info.status == "ok" and info.model_calls == TOTAL_CALLS
    assert any("lacked 1 run folders" in r.getMessage() for r in caplog.records)


async def test_an_evaluation_over_a_damaged_index_runs_and_adopts_its_own_runs(tmp_path: Path) -> None:
    from rolegraph.evals import EvalStore
    from rolegraph.models.servers.loadtest import LoadTestServer
    from tests.unit.test_adoption import LIMIT, _evaluate, _forget_results, _runtime

    runs, results = tmp_path / "runs", EvalStore(tmp_path / "e" / "mcq-question" / "results.sqlite")
    async with LoadTestServer(delay_s=0, reply="The answer is (a)") as server:
        rt = _runtime(server.base_url, runs)
        await _evaluate(rt, results)
        assert rt.traces is not None
        closed(rt.traces)
        damage(runs / "index.sqlite", "malformed")
        _forget_results(results)  # killed before its results were committed: its runs are adopted
        again = await _evaluate(_runtime(server.base_url, runs), results, resume=True)
        assert again.adopted == LIMIT and server.requests == LIMIT  # type: ignore[attr-defined]
        damage(runs / "index.sqlite", "not a database")
        fresh = await _evaluate(_runtime(server.base_url, runs), EvalStore(tmp_path / "f" / "results.sqlite"))
        assert server.requests == 2 * LIMIT and fresh.adopted == 0  # type: ignore[attr-defined]
    assert len(TraceStore(runs).list(limit=100)) == 2 * LIMIT


def test_trace_list_and_reindex_on_the_command_line(tmp_path: Path) -> None:
    store, result = asyncio.run(record(tmp_path))
    runs = closed(store).root
    damage(runs / "index.sqlite", "malformed")
    listing = cli("trace", "list", "--runs", str(runs), cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert str(result.run_id) in listing.stdout and "Traceback" not in listing.stderr
    (warning,) = listing.stderr.strip().splitlines()  # one line, naming the file
    assert f"{runs / 'index.sqlite'} was damaged (database disk image is malformed)" in warning

    damage(runs / "index.sqlite", "not a database")
    done = cli("trace", "reindex", "--runs", str(runs), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{runs / 'index.sqlite'}: rebuilt it from 1 run folders" in done.stdout
    assert str(result.run_id) in cli("trace", "list", "--runs", str(runs), cwd=tmp_path).stdout
    missing = cli("trace", "reindex", "--runs", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 1 and "no runs folder" in missing.stderr


async def test_the_ui_says_what_happened_to_a_damaged_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rolegraph.traces._store as store_module

    store, result = await record(tmp_path)
    runs = closed(store).root
    damage(runs / "index.sqlite", "not a database")
    ui = TestClient(create_app(runs=runs, evals=tmp_path / "evals"))
    page = ui.get("/runs")
    assert page.status_code == 200 and str(result.run_id) in page.text
    assert 'id="index-notice"' in page.text and "was damaged (file is not a database)" in page.text
    assert 'id="index-notice"' not in ui.get("/runs").text  # said once

    damage(runs / "index.sqlite", "malformed")

    def cannot(*args: object) -> None:
        raise PermissionError(13, "Permission denied", str(runs / "index.sqlite"))

    monkeypatch.setattr(store_module.os, "replace", cannot)
    broken = TestClient(create_app(runs=runs, evals=tmp_path / "evals")).get("/runs")
    assert broken.status_code == 503
    assert "could not be rebuilt from the run folders" in broken.text and "Permission denied" in broken.text


# -- a damaged trace ----------------------------------------------------------------------------


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


async def test_mid_file_garbage_line_is_reported_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, result = await record(tmp_path)
    intact = store.load(result.run_id or "")
    log = intact.dir / "events.jsonl"
    original = lines(log)
    log.write_bytes(b"".join([*original[:7], b'{"kind": "node_sta\x00\x00 garbage\n', *original[7:]]))
    caplog.set_level(logging.WARNING, logger="rolegraph.traces")

    damaged = store.load(result.run_id or "")
    assert len(damaged.events) == len(intact.events) == len(original)  # the 12 events after the line are kept
    assert [e.seq for e in damaged.events] == [e.seq for e in intact.events]
    assert damaged.complete and damaged.status == "ok" and not damaged.dropped_tail
    (where,) = damaged.damaged
    assert where.startswith(f"{log}:8: ")
    assert [r.getMessage() for r in caplog.records] == [f"{where}; the line was skipped"]

    shown = cli("trace", "show", str(damaged.dir), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "incomplete" not in shown.stdout and "damaged: 1 line of the log" in shown.stdout and f"{log}:8:" in shown.stdout
    assert f"{log}:8:" in shown.stderr  # the warning, on stderr

    # a rebuilt index reads the log the same way: a damaged line after the end is no reason to call it unfinished
    log.write_bytes(b"".join([*original, b"\x00" * 40 + b"\n"]))
    assert store.load(result.run_id or "").complete and store.reindex() == 1
    assert [(r.status, r.model_calls) for r in store.list()] == [("ok", 6)]

    # only a cut-off last line is a cut-off tail
    log.write_bytes(b"".join(original[:-1]) + original[-1][:25])
    cut = store.load(result.run_id or "")
    assert cut.dropped_tail and not cut.damaged and not cut.complete and len(cut.events) == len(original) - 1
    assert store.reindex() == 1 and [r.status for r in store.list()] == ["incomplete"]


async def test_resume_reads_what_it_appended_after_a_garbage_line(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    kill_after(5, runs)
    store = TraceStore(runs)
    (info,) = store.list()
    log = runs / info.run_id / "events.jsonl"
    original = lines(log)
    log.write_bytes(b"".join([*original[:3], b"garbage\n", *original[3:]]))
    killed = store.load(info.run_id)
    assert len(killed.damaged) == 1 and len(killed.events) == len(original) - killed.dropped_tail

    live = FunctionModel(answer)
    result = await resume_run(killed, store=store, live=Runtime.from_models({"default": live}))
    assert result.iterations == 2
    resumed = store.load(info.run_id)
    assert resumed.complete and resumed.of_kind(RunResumed) and resumed.damaged == killed.damaged
    assert len([c for c in resumed.of_kind(ModelCall) if c.response is not None]) == 9
    seqs = [e.seq for e in resumed.events]
    assert len(seqs) == len(set(seqs))  # numbered on past the skipped line, never twice


def cut_before(log: Path, kind: str, key: str) -> None:
    """Keep a log's lines before its event `kind` of node execution `key` (as a lost tail would)."""
    kept = []
    for line in lines(log):
        event = json.loads(line)
        if event["kind"] == kind and (event.get("key") or event.get("node_key")) == key:
            break
        kept.append(line)
    log.write_bytes(b"".join(kept))


async def test_resume_refuses_a_log_behind_its_checkpoint(tmp_path: Path) -> None:
    store, result = await record(tmp_path)  # checkpointed through its last step (evaluate@5)
    log = Path(result.trace_dir or "") / "events.jsonl"
    cut_before(log, "node_finished", "evaluate@5")
    before = log.read_bytes()
    trace = store.load(result.run_id or "")
    assert not trace.complete
    live = FunctionModel(answer)
    with pytest.raises(UserError) as refused:
        await resume_run(trace, store=store, live=Runtime.from_models({"default": live}))
    message = str(refused.value)
    assert "cannot be resumed: its log and its checkpoint disagree" in message
    assert "checkpoint (checkpoints.sqlite) is at step 5" in message and "check@4 (step 4)" in message
    assert live.requests == [] and log.read_bytes() == before  # the run was not touched

    resumed = cli("resume", str(result.run_id), "--runs", str(store.root), cwd=tmp_path)
    assert resumed.returncode == 1 and "disagree" in resumed.stderr and resumed.stderr.count("\n") == 1


async def test_replaying_an_incomplete_run_replays_what_was_recorded(tmp_path: Path) -> None:
    store, result = await record(tmp_path)
    log = Path(result.trace_dir or "") / "events.jsonl"
    cut_before(log, "node_finished", "check@4")  # killed inside its step 3 (its call recorded)
    trace = store.load(result.run_id or "")
    assert not trace.complete and [e.step for e in trace.of_kind(NodeFinished)] == [0, 1, 2]

    replayed = await replay_run(trace, store=store)
    assert isinstance(replayed, PartialReplay) and replayed.identical
    assert replayed.message == (f"run {trace.run_id} stopped after step 2 (incomplete); replayed its 3 recorded "
                                "steps, identical; check (step 3) had started and was cut off")
    assert len(store.list()) == 1  # no new run, error or otherwise

    shown = cli("replay", trace.run_id, "--runs", str(store.root), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"run {trace.run_id} stopped after step 2 (incomplete); replayed its 3 recorded steps, identical" \
        in " ".join(shown.stdout.split())
    assert len(TraceStore(store.root).list()) == 1

    # a recorded step the replay does not reach is a real mismatch, still with nothing written
    cut_before(log, "node_started", "check@4")
    changed = store.load(trace.run_id)
    for e in changed.of_kind(ModelCall):
        if e.node_key == "reflect@2":
            e.fingerprint = "0" * 16  # as if the prompt had changed since
    with pytest.raises(ReplayMismatch, match="recorded step 1 \\(reflect\\) was not reached"):
        await replay_run(changed, store=store)
    assert len(store.list()) == 1
