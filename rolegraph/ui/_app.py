"""`rolegraph ui`'s routes: the run list (from the trace index), a run's trace page with fork forms,
two runs side by side, the evaluation list with live progress, an evaluation's report, and two
evaluations paired. Everything is rendered on the server from the package's templates."""

from __future__ import annotations

import datetime as dt
import html
import math
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from rolegraph.errors import UserError
from rolegraph.evals import EvalRecord, EvalStore, render_report
from rolegraph.prompts import PromptLibrary
from rolegraph.runtime import Runtime
from rolegraph.traces import (
    ASSETS,
    SHARED_ASSETS,
    SORT_COLUMNS,
    HumanInput,
    Redactor,
    Trace,
    TraceStore,
    render_view,
    role_prompts,
)
from rolegraph.ui._cache import PageCache
from rolegraph.ui._compare import compare_evals, compare_runs, preview, shared_scorers
from rolegraph.ui._forks import ForkJobs
from rolegraph.ui._guard import Guard
from rolegraph.ui._paths import NotFound, inside
from rolegraph.ui._resumes import ResumeJobs, form_answer

UI_ASSETS = Path(__file__).parent / "assets"
STATIC = {**{name: ASSETS / name for name in SHARED_ASSETS}, "ui.css": UI_ASSETS / "ui.css"}
"""Every file the app serves from disk: the package's own, by name."""
PER_PAGE = (25, 50, 100, 200)
MAX_PAGE = 1_000_000
STATUSES = ("ok", "error", "interrupted", "running", "incomplete")
NAV = {"Runs": "/runs", "Evaluations": "/evals"}
EVAL_DEPTH = 3
"""How deep evaluations sit under --evals: `<id>`, `<suite>/<benchmark>` (`rolegraph eval mcq`), or one more."""


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(UI_ASSETS)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["preview"] = preview
    env.filters["when"] = _when
    env.filters["q"] = lambda v: urllib.parse.quote(str(v), safe="")
    env.filters["qp"] = lambda v: urllib.parse.quote(str(v), safe="/")
    return env


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "—"


def create_app(*, runs: str | Path = "runs", evals: str | Path = "evals", live: Callable[[], Runtime] | None = None,
               live_description: str = "the models of rolegraph.toml, or the embedded CPU model",
               config: str | Path | None = None, redactor: Redactor | None = None, host: str = "127.0.0.1") -> FastAPI:
    """The app over `runs` (a trace store) and `evals` (evaluation directories). `live()` makes the
    runtime a fork calls (default: `Runtime.load(config)`, what `rolegraph replay` loads), and
    `live_description` says on the page which models that is before a fork starts. It answers only
    requests addressed to `host` (the address it is served on), loopback or the socket's own address,
    and a POST only from its own pages (`ui._guard`)."""
    runs_root, evals_root = Path(runs), Path(evals)
    redact = redactor or Redactor()
    store = TraceStore(runs_root, redactor=redact)
    jobs = ForkJobs(runs_root, live or (lambda: Runtime.load(config)), redact)
    app = FastAPI(title="rolegraph", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.jobs = jobs
    resumes = ResumeJobs(runs_root, live or (lambda: Runtime.load(config)), redact)
    app.state.resumes = resumes
    app.add_middleware(Guard, host=host)
    reports = PageCache()

    def page(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        html = _env().get_template(template).render(nav=NAV, **values)
        return HTMLResponse(redact(html), status_code=status_code)

    def load_run(run_id: str) -> Trace:
        return Trace.load(inside(runs_root, run_id, must_have="events.jsonl"))

    def open_eval(eval_id: str) -> EvalStore:
        folder = inside(evals_root, eval_id, must_have="results.sqlite", depth=EVAL_DEPTH)
        return EvalStore(folder / "results.sqlite", redactor=redact)

    def has_run(run_id: str | None) -> bool:
        """Whether a trace an evaluation names is in the runs folder (its page is then linked)."""
        return bool(run_id) and (runs_root / str(run_id) / "events.jsonl").is_file()

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> HTMLResponse:
        return page("message.html.j2", 404, title="Not found", message=str(exc))

    @app.exception_handler(UserError)
    async def bad_request(request: Request, exc: UserError) -> HTMLResponse:
        return page("message.html.j2", 400, title="Cannot do that", message=str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> HTMLResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "not a valid request"}
        where = ".".join(str(part) for part in first["loc"][1:]) or "request"
        return page("message.html.j2", 400, title="Cannot do that", message=f"{where}: {first['msg']}")

    @app.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse("/runs", status_code=307)

    @app.get("/assets/{name}")
    async def asset(name: str) -> Response:
        if name not in STATIC:
            raise NotFound(f"no asset '{name}'")
        media = {"css": "text/css", "js": "text/javascript"}.get(name.rsplit(".", 1)[-1], "text/plain")
        return FileResponse(STATIC[name], media_type=media, headers={"Cache-Control": "max-age=3600"})

    @app.get("/runs", response_class=HTMLResponse)
    def runs_list(graph: str = "", status: str = "", q: str = "", sort: str = "started", order: str = "desc",
                  page_no: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
                  per: Annotated[int, Query(ge=1, le=max(PER_PAGE))] = 50, parent: str = "") -> HTMLResponse:
        per = per if per in PER_PAGE else 50
        if sort not in SORT_COLUMNS:
            sort = "started"
        try:
            result = store.page(graph=graph or None, status=status or None, search=q or None, parent=parent or None,
                                sort=sort, descending=order != "asc", offset=(max(page_no, 1) - 1) * per, limit=per)
            graphs = store.graphs()
        except UserError as exc:  # the index is damaged and could not be rebuilt (a read-only folder, say)
            return page("message.html.j2", 503, title="The run list cannot be read", message=str(exc))
        pages = max(1, math.ceil(result.total / per))
        params = {"graph": graph, "status": status, "q": q, "sort": sort, "order": order, "per": per, "parent": parent}

        def url(**change: Any) -> str:
            return "/runs?" + urllib.parse.urlencode({k: v for k, v in {**params, **change}.items() if v not in ("", None)})

        listed = page("runs.html.j2", runs=result.runs, total=result.total, page_no=min(max(page_no, 1), pages),
                      pages=pages, per=per, per_options=PER_PAGE, graphs=graphs, statuses=STATUSES, f=params,
                      url=url, columns=("run", "graph", "status", "calls", "tokens", "duration", "started"))
        notice = store.take_notice()  # the index was damaged and has just been rebuilt: say so, once
        if notice:
            text = f'<main><p class="message notice" id="index-notice">{html.escape(redact(notice))}</p>'
            listed = HTMLResponse(bytes(listed.body).decode().replace("<main>", text, 1), status_code=listed.status_code)
        return listed

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(run_id: str) -> HTMLResponse:
        trace = load_run(run_id)
        started = trace.started
        compare = None
        if started.parent is not None:
            compare = f"/compare?a={urllib.parse.quote(started.parent.run_id)}&b={urllib.parse.quote(trace.run_id)}"
        html = render_view(trace, assets_url="/assets/", app={
            "nav": NAV, "fork_url": f"/runs/{urllib.parse.quote(trace.run_id)}/fork", "fork_roles": _fork_roles(trace),
            "fork_answers": bool(trace.of_kind(HumanInput)),
            "live": live_description, "compare_url": compare, **_resume_view(trace, resumes),
            **_live_view(trace, store)})
        return HTMLResponse(redact(html))

    @app.get("/runs/{run_id}/live.json")
    def run_live(run_id: str) -> JSONResponse:
        """What a run's page polls while the run is in progress: its status and how long its log is."""
        folder = inside(runs_root, run_id, must_have="events.jsonl")
        info = store.info(folder.name)
        status = info.status if info is not None else load_run(run_id).status
        return JSONResponse({"status": status, "size": (folder / "events.jsonl").stat().st_size},
                            headers={"Cache-Control": "no-store"})

    @app.post("/runs/{run_id}/resume")
    async def resume(run_id: str, request: Request) -> RedirectResponse:
        trace = load_run(run_id)
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        resumes.start(trace, form)
        return RedirectResponse(f"/runs/{urllib.parse.quote(trace.run_id)}", status_code=303)

    @app.post("/runs/{run_id}/fork")
    async def fork(run_id: str, request: Request) -> RedirectResponse:
        trace = load_run(run_id)
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)

        def field(name: str) -> str:
            return (form.get(name) or [""])[0]

        try:
            step = int(field("step"))
        except ValueError:
            raise UserError(f"step must be a number, not '{field('step')}'") from None
        role, model = field("role").strip(), field("model").strip()
        prompt = field("prompt").replace("\r\n", "\n")
        current = _fork_roles(trace).get(role)
        if not prompt.strip() or (current is not None and prompt.strip() == current.strip()):
            prompt = ""  # unchanged
        typed = field("answer").strip()
        job = jobs.start(trace, step=step, role=role, model=model or None, prompt=prompt or None,
                         answer=form_answer(typed) if typed else None)
        return RedirectResponse(f"/forks/{job.id}", status_code=303)

    @app.get("/forks/{job_id}.json")
    def fork_json(job_id: str) -> JSONResponse:
        job = jobs.get(job_id)
        if job is None:
            raise NotFound(f"no fork '{job_id}'")
        return JSONResponse(asdict(jobs.update(job)))

    @app.get("/forks/{job_id}", response_class=HTMLResponse)
    def fork_page(job_id: str) -> HTMLResponse:
        job = jobs.get(job_id)
        if job is None:
            raise NotFound(f"no fork '{job_id}'")
        return page("fork.html.j2", job=jobs.update(job), live=live_description)

    @app.get("/compare", response_class=HTMLResponse)
    def compare(a: str, b: str) -> HTMLResponse:
        return page("compare.html.j2", c=compare_runs(load_run(a), load_run(b)))

    @app.get("/evals", response_class=HTMLResponse)
    def evals_list() -> HTMLResponse:
        items = []
        found = [p for d in range(1, EVAL_DEPTH + 1) for p in evals_root.glob("*/" * d + "results.sqlite")]
        for path in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True):
            eval_id = path.parent.relative_to(evals_root).as_posix()
            try:
                ev = open_eval(eval_id)
            except NotFound:
                continue
            meta = ev.meta()
            items.append({"id": eval_id, "benchmark": meta.get("benchmark", "?"), "created": meta.get("created"),
                          "progress": ev.progress(), "headline": ev.headline()})
        return page("evals.html.j2", evals=items)

    @app.get("/evals/compare", response_class=HTMLResponse)
    def evals_compare(a: str, b: str, scorer: str = "") -> HTMLResponse:
        ea, eb = open_eval(a), open_eval(b)
        ma, mb = ea.meta(), eb.meta()
        if ma.get("benchmark") != mb.get("benchmark"):
            raise UserError(f"{a} is '{ma.get('benchmark')}' and {b} is '{mb.get('benchmark')}': "
                            "only evaluations of one benchmark pair up")
        scorers = sorted(set(ea.headline()) | set(eb.headline()))
        if not scorers:
            raise UserError("neither evaluation has a scored result yet")
        scorer = scorer if scorer in scorers else next(iter(shared_scorers(ea, eb)), scorers[0])  # a shared one first
        try:
            cmp = compare_evals(ea, eb, scorer)
        except ValueError as exc:
            raise UserError(f"{a} and {b}: {exc}") from None
        present = {t for c in cmp.flipped for t in (c.a_trace, c.b_trace) if has_run(t)}
        return page("eval_compare.html.j2", c=cmp, present=present, scorers=scorers, benchmark=ma.get("benchmark"),
                    a=a, b=b)

    @app.get("/evals/{eval_id:path}/progress.json")
    def eval_progress(eval_id: str) -> JSONResponse:
        return JSONResponse(asdict(open_eval(eval_id).progress()))

    @app.get("/evals/{eval_id:path}", response_class=HTMLResponse)
    def eval_page(eval_id: str) -> HTMLResponse:
        folder = inside(evals_root, eval_id, must_have="results.sqlite", depth=EVAL_DEPTH)

        def link(r: EvalRecord) -> str | None:
            return f"/runs/{urllib.parse.quote(str(r.run_id))}" if has_run(r.run_id) else None

        def render() -> str:
            url = f"/evals/{urllib.parse.quote(eval_id)}/progress.json"
            return redact(render_report(open_eval(eval_id), link=link, app={"nav": NAV, "progress_url": url}))

        # rendered once per change of its results (2,000 results take ~50 ms), not once per visitor
        sources = [folder / "results.sqlite", folder / "results.sqlite-wal"]
        return HTMLResponse(reports.get(eval_id, sources, render, extra=redact.values))

    return app


def _resume_view(trace: Trace, resumes: ResumeJobs) -> dict[str, Any]:
    """What a run's page shows of human input: the form answering the questions an interrupted run
    waits on, and, while a resume started there is going on, that it is (the page then reloads)."""
    if resumes.running(trace.run_id):
        return {"resuming": True}
    job = resumes.get(trace.run_id)
    failed = {"resume_error": job.message} if job is not None and job.state == "error" else {}
    if trace.status == "interrupted":
        return {"resume_url": f"/runs/{urllib.parse.quote(trace.run_id)}/resume", **failed}
    return failed


def _live_view(trace: Trace, store: TraceStore) -> dict[str, Any]:
    """The run's status as the run list shows it ("running" while its writer lives, "incomplete" once
    it is dead), and while it runs, the URL its page polls to update itself in place."""
    info = store.info(trace.run_id) if trace.finished is None else None
    status = info.status if info is not None else trace.status
    live = f"/runs/{urllib.parse.quote(trace.run_id)}/live.json" if status == "running" else None
    return {"status": status, "live_url": live}


def _fork_roles(trace: Trace) -> dict[str, str | None]:
    """Role -> the source of the prompt template it used, when the graph's prompt folders still hold
    that exact version (else None: the form then starts empty)."""
    manifest = trace.started.manifest
    used = role_prompts(trace)
    library = PromptLibrary().below(*manifest.prompt_dirs)
    out: dict[str, str | None] = {}
    for role in trace.roles:
        source = None
        name = used.get(role)
        if name:
            try:
                template = library.get(name)
            except Exception:  # noqa: BLE001 - a prompt that cannot be read is just not shown
                template = None
            if template is not None and manifest.prompts.get(name) in (None, template.sha256):
                source = template.source
        out[role] = source
    return out
