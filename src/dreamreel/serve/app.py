"""The studio's web app: the page, its JSON API over the queue, progress as server-sent events, the
gallery of the output folder and its files, uploads, and the A1111 API (a1111.py).

``create_app`` builds it for one output folder and one model; the model loads in the worker thread
when the server starts, so the page is served at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Header, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles

from dreamreel.errors import DreamreelError
from dreamreel.jobs import JOBS
from dreamreel.serve.forms import field_of_error, form_schema, recipe_from_form
from dreamreel.serve.queue import JobQueue
from dreamreel.serve.security import COOKIE, Guard

if TYPE_CHECKING:
    from dreamreel.models.loading import LoadedModel

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
VIDEO_SUFFIXES = (".mp4", ".webm", ".gif")
UPLOAD_CHUNK = 1 << 20
STREAM_POLL = 0.1  # s between looks at the event list while a stream waits


@dataclass
class Settings:
    out: Path
    model: str = "tiny"
    host: str = "127.0.0.1"
    password: str | None = None
    allow_hosts: tuple[str, ...] = ()
    max_upload_mb: int = 200
    previews: bool = True
    load: Callable[[], LoadedModel] | None = None  # tests hand in a loaded model


@cache
def static_file(name: str) -> bytes:
    return resources.files("dreamreel.serve").joinpath("static").joinpath(name).read_bytes()


def error_response(exc: DreamreelError, job: str | None = None, status: int = 400) -> JSONResponse:
    body: dict[str, Any] = {"error": str(exc)}
    if job is not None:
        body["field"] = field_of_error(job, str(exc))
    return JSONResponse(body, status_code=status)


def confined(out: Path, relative: str) -> Path | None:
    """``relative`` inside the output folder, symlinks resolved, or None (traversal, a link out,
    a hidden folder, a missing file)."""
    root = out.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    if any(part.startswith(".") for part in path.relative_to(root).parts):
        return None
    return path


def confined_folder(out: Path, relative: str) -> Path | None:
    """A run folder inside the output folder (as ``confined``, for folders)."""
    root = out.resolve()
    path = (root / relative).resolve()
    if not relative or not path.is_relative_to(root) or not path.is_dir() or path == root:
        return None
    return path


def create_app(settings: Settings) -> FastAPI:
    from dreamreel.serve import a1111

    out = settings.out
    out.mkdir(parents=True, exist_ok=True)

    def load() -> LoadedModel:
        from dreamreel.models.loading import load_model

        return load_model(settings.model, quiet=True)

    queue = JobQueue(out, settings.load or load, model_spec=settings.model, previews=settings.previews)
    guard = Guard.make(settings.password, settings.host, settings.allow_hosts)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        queue.start()
        yield
        await asyncio.to_thread(queue.stop)

    app = FastAPI(title="dreamreel studio", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.queue = queue
    app.state.settings = settings
    app.middleware("http")(guard)
    app.include_router(a1111.router)
    app.mount("/static", StaticFiles(packages=[("dreamreel.serve", "static")]), name="static")

    # -- the page -----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def page() -> Response:
        return HTMLResponse(static_file("index.html"))

    @app.get("/login", response_class=HTMLResponse)
    def login_page() -> Response:
        return HTMLResponse(static_file("login.html"))

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        given = str(form.get("password", ""))
        if guard.password is None or not secrets.compare_digest(given.encode(), guard.password.encode()):
            return HTMLResponse(static_file("login.html"), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, guard.session_token(), httponly=True, samesite="strict")
        return response

    # -- the queue ----------------------------------------------------------------------------

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        model = queue.model
        return {
            "model": settings.model,
            "loaded": model is not None,
            "error": queue.model_error,
            "last_event_id": queue.events.last_id,
        }

    @app.get("/api/forms")
    def forms() -> list[dict[str, Any]]:
        return form_schema()

    @app.get("/api/jobs")
    def jobs() -> list[dict[str, Any]]:
        return [job.public() for job in queue.jobs()]

    @app.post("/api/jobs")
    async def submit(request: Request) -> Response:
        body = await request.json()
        job_name = str(body.get("job", "")) if isinstance(body, dict) else ""
        fields = body.get("fields", {}) if isinstance(body, dict) else {}
        if not isinstance(fields, dict):
            return JSONResponse({"error": "fields must be an object"}, status_code=422)
        try:
            recipe = recipe_from_form(
                job_name, fields, out=out, model=settings.model, video_name=f"{job_name}-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
            )
            job = await asyncio.to_thread(queue.submit, recipe)
        except DreamreelError as exc:
            return error_response(exc, job_name if job_name in JOBS else None)
        return JSONResponse(job.public())

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> Response:
        try:
            found = queue.get(job_id)
        except DreamreelError as exc:
            return error_response(exc, status=404)
        return JSONResponse({**found.public(), "preview": found.preview, "last_event_id": queue.events.last_id})

    @app.post("/api/jobs/{job_id}/{action}")
    async def act(job_id: str, action: str, request: Request) -> Response:
        try:
            if action == "cancel":
                found = queue.cancel(job_id)
            elif action == "resume":
                found = queue.resume_job(job_id)
            elif action == "move":
                body = await request.json()
                found = queue.move(job_id, body.get("before") if isinstance(body, dict) else None)
            else:
                return JSONResponse({"error": f"unknown action {action!r}"}, status_code=404)
        except DreamreelError as exc:
            return error_response(exc)
        return JSONResponse(found.public())

    @app.get("/api/events", response_class=EventSourceResponse)
    async def events(
        request: Request, job: str | None = None, after: int = 0, last_event_id: str | None = Header(None)
    ) -> AsyncIterator[ServerSentEvent]:
        """Events after ``Last-Event-ID`` (an EventSource reconnecting) or ``after``; with ``job``,
        that job's only, and the stream ends after its done or error event."""
        last = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
        while True:
            for event in queue.events.since(last, job):
                last = event.id
                yield ServerSentEvent(data={**event.data, "job": event.job}, event=event.kind, id=str(event.id))
                if job is not None and event.kind in ("done", "error"):
                    return
            if job is not None and queue.get(job).state not in ("queued", "running"):
                return
            if queue.closing:
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(STREAM_POLL)

    # -- the output folder --------------------------------------------------------------------

    @app.post("/api/runs/resume")
    async def resume_run(request: Request) -> Response:
        """Queue the resume of an interrupted run folder of the output folder (one the CLI left too)."""
        body = await request.json()
        path = confined_folder(out, str(body.get("path", "")) if isinstance(body, dict) else "")
        if path is None:
            return JSONResponse({"error": "no such run folder in the output folder"}, status_code=404)
        try:
            found = await asyncio.to_thread(queue.resume_run, path)
        except DreamreelError as exc:
            return error_response(exc)
        return JSONResponse(found.public())

    @app.get("/api/gallery")
    def gallery() -> dict[str, Any]:
        return gallery_of(out)

    @app.get("/api/info/{relative:path}")
    def info(relative: str) -> Response:
        from dreamreel.runs.picture_settings import picture_info_text

        path = confined(out, relative)
        if path is None:
            return Response(status_code=404)
        try:
            text = picture_info_text(path)
        except DreamreelError as exc:
            return error_response(exc)
        try:
            from dreamreel.jobs.from_pictures import recipe_from_picture

            recipe: dict[str, Any] | None = recipe_from_picture(path).to_dict()
        except DreamreelError:
            recipe = None  # settings no recipe can hold: shown, not sent anywhere
        return JSONResponse({"path": relative, "text": text, "recipe": recipe})

    @app.get("/files/{relative:path}")
    def files(relative: str) -> Response:
        path = confined(out, relative)
        if path is None:
            return Response("not found", status_code=404)
        return FileResponse(path)  # answers HTTP Range requests: videos seek

    @app.post("/api/upload")
    async def upload(request: Request, file: UploadFile) -> Response:
        limit = settings.max_upload_mb << 20
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + (1 << 16):
            return JSONResponse({"error": f"upload larger than {settings.max_upload_mb} MB"}, status_code=413)
        digest = hashlib.sha256()
        chunks = []
        size = 0
        while chunk := await file.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > limit:
                return JSONResponse({"error": f"upload larger than {settings.max_upload_mb} MB"}, status_code=413)
            digest.update(chunk)
            chunks.append(chunk)
        suffix = Path(file.filename or "").suffix.lower()
        if not suffix.isascii() or not suffix[1:].isalnum():
            suffix = ""
        try:
            relative = await asyncio.to_thread(store_upload, out, b"".join(chunks), digest.hexdigest()[:16], suffix)
        except DreamreelError as exc:
            return error_response(exc)
        return JSONResponse({"path": relative})

    return app


def run_server(settings: Settings, port: int) -> None:
    """Serve until Ctrl-C/SIGTERM; open event streams end at once then, so the server stops promptly."""
    import uvicorn

    app = create_app(settings)

    class StudioServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.queue.closing = True
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=settings.host, port=port, log_level="warning", timeout_graceful_shutdown=3)
    StudioServer(config).run()


def store_upload(out: Path, data: bytes, name: str, suffix: str) -> str:
    """Keep an upload in ``out/uploads`` if it is a picture or a video the CLI would take (the same
    checks), else a one-line error; the returned path is what a form's file field holds."""
    from dreamreel.media.pictures import open_image_checked
    from dreamreel.runs.files import write_atomic

    folder = out / "uploads"
    path = folder / f"{name}{suffix or '.bin'}"
    write_atomic(path, data)
    try:
        try:
            open_image_checked(path)
        except DreamreelError as picture_error:
            from dreamreel.media.video import probe_video

            try:
                probe_video(path)
            except DreamreelError:
                raise DreamreelError(f"the upload is neither a picture nor a video: {picture_error}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path.relative_to(out).as_posix()


def gallery_of(out: Path) -> dict[str, Any]:
    """The output folder, newest first: pictures, videos (with their contact sheet and run folder
    state) and interrupted run folders."""
    from dreamreel.runs.store import RunStore

    pictures, videos, runs = [], [], []
    entries: list[Path] = []
    for folder, dirs, names in os.walk(out):  # not into hidden folders, uploads or run folders' frames
        here = Path(folder)
        entries += [here / name for name in names if not name.startswith(".")]
        entries += [here / name for name in dirs if name.endswith(".run")]
        dirs[:] = [d for d in dirs if not d.startswith(".") and not d.endswith(".run") and (here / d) != out / "uploads"]
    entries.sort(key=lambda p: p.stat().st_mtime if p.exists() else 0, reverse=True)
    for path in entries:
        relative = path.relative_to(out).as_posix()
        if path.is_dir() and RunStore.is_run_folder(path):
            video = next((path.with_suffix(s) for s in VIDEO_SUFFIXES if path.with_suffix(s).is_file()), None)
            if video is None:
                runs.append({"path": relative, "frames": len(RunStore.open(path).done())})
        elif path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            run = path.with_suffix(".run")
            sheet = path.with_suffix(".sheet.png")
            videos.append({
                "path": relative,
                "sheet": sheet.relative_to(out).as_posix() if sheet.is_file() else None,
                "run": run.relative_to(out).as_posix() if run.is_dir() else None,
                "frames": len(RunStore.open(run).done()) if RunStore.is_run_folder(run) else None,
            })  # fmt: skip
        elif path.suffix.lower() in PICTURE_SUFFIXES and path.is_file() and not path.name.endswith(".sheet.png"):
            pictures.append({"path": relative})
    return {"pictures": pictures, "videos": videos, "runs": runs}
