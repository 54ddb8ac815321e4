"""The studio's HTTP face: JSON and PNG endpoints over a Studio, the page's own assets, and a uvicorn runner."""
from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MgpeError
from .session import Studio, StudioError, StudioFace, StudioResult, safe_name

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
               ".woff2": "font/woff2", ".ico": "image/x-icon"}
# What a result offers to download: URL name -> (file name suffix after the stem, what it is).
RESULT_FILES = {"result.png": ".png", "aligned.png": ".aligned.png", "mask.png": ".mask.png",
                "mask.preview.png": ".mask.preview.png", "recipe.txt": ".txt"}
FACE_FILES = ("aligned.png", "photo.png", "mask.png", "mask.preview.png")
# A JSON request holds ops and at most a painted mask (a few hundred kB): anything far larger is refused unread.
MAX_JSON_BYTES = 8 * 2 ** 20
MAX_OPS = 200


def _assets() -> dict[str, Path]:
    """Every file the page may load, by its name under static/: nothing else is ever served."""
    return {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*")
            if p.is_file() and p.suffix in MEDIA_TYPES}


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def encode_labels(labels: np.ndarray) -> str:
    """(H, W) uint8 labels -> base64 of their bytes, row by row (the page's mask format)."""
    return base64.b64encode(np.ascontiguousarray(labels, np.uint8).tobytes()).decode("ascii")


def decode_labels(text, shape: tuple[int, int]) -> np.ndarray:
    if not isinstance(text, str):
        raise StudioError("the request has no mask (labels: base64 of the label bytes)")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise StudioError("the mask is not valid base64") from None
    if len(raw) != shape[0] * shape[1]:
        raise StudioError(f"the mask has {len(raw)} labels, the face {shape[0] * shape[1]} ({shape[1]}×{shape[0]})")
    return np.frombuffer(raw, np.uint8).reshape(shape).copy()


# What the palette shows for the labels whose names are abbreviations (the CLI's names stay in the tooltip).
READABLE = {"eye_g": "eyeglasses", "l_eye": "left eye", "r_eye": "right eye", "l_brow": "left brow",
            "r_brow": "right brow", "l_ear": "left ear", "r_ear": "right ear", "mouth": "inner mouth",
            "u_lip": "upper lip", "l_lip": "lower lip", "ear_r": "earring", "neck_l": "necklace", "cloth": "clothes"}


def info() -> dict:
    """Labels with colours, components and the op grammar's names: what the page's palette and hints show."""
    from .. import __version__
    from ..labels import COLORS, COMPONENTS, DESCRIPTIONS, LABELS
    from ..maskops import REGION_NAMES, known_names

    return {"version": __version__,
            "labels": [{"index": i, "name": n, "title": READABLE.get(n, n.replace("_", " ")),
                        "color": "#%02x%02x%02x" % tuple(int(c) for c in COLORS[i]),
                        "description": DESCRIPTIONS[n]} for i, n in enumerate(LABELS)],
            "components": list(COMPONENTS), "names": known_names(), "regions": list(REGION_NAMES)}


def face_json(face: StudioFace) -> dict:
    h, w = face.face.photo.shape[:2] if face.face.photo is not None else face.face.image.shape[:2]
    urls = {f.rsplit(".", 1)[0].replace(".", "_"): f"/api/faces/{face.id}/{f}" for f in FACE_FILES}
    return {"id": face.id, "name": face.name, "photo_size": [w, h], "size": int(face.parsed.shape[0]),
            "seconds": round(face.seconds, 3), "labels": encode_labels(face.parsed), "urls": urls,
            "stages": face.stages}


def result_json(result: StudioResult) -> dict:
    base = f"/api/results/{result.id}/"
    return {"id": result.id, "kind": result.kind, "seconds": round(result.seconds, 3),
            "stages": result.result.stages, "notes": result.notes, "recipe": result.recipe,
            "before": {"aligned": f"/api/faces/{result.before.id}/aligned.png",
                       "photo": f"/api/faces/{result.before.id}/photo.png"},
            "after": {"aligned": base + "aligned.png", "pasted": base + "result.png"},
            "downloads": {name: {"url": base + name + "?download=1", "filename": result.stem + suffix}
                          for name, suffix in RESULT_FILES.items()}}


def create_app(studio: Studio | None = None, *, allowed_hosts: list[str] | None = None):
    """The Starlette app. `allowed_hosts`: Host headers accepted (default: the loopback names), so a web page
    that rebinds its own name to 127.0.0.1 cannot reach the studio."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    studio = studio if studio is not None else Studio()
    assets = _assets()

    def error(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def guarded(endpoint):
        """User errors become {"error": one line} with their status; nothing else is caught. A request that
        changes anything must come from the studio's own page (its Origin, when the browser sends one)."""
        async def wrapped(request: Request):
            try:
                if request.method != "GET":
                    same_origin(request)
                return await endpoint(request)
            except StudioError as exc:
                return error(str(exc), exc.status)
            except MgpeError as exc:
                return error(str(exc), 400)
            except Exception as exc:  # a bug: logged whole, the page gets one line and the server goes on
                log.exception("mgpe studio: %s %s", request.method, request.url.path)
                return error(f"internal error ({type(exc).__name__}: {exc}); the server's log has the details", 500)
        return wrapped

    def same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
            raise StudioError(f"requests from {origin} are refused: only the studio's own page may send them", 403)

    async def json_body(request: Request) -> dict:
        # application/json alone: another site's page can only send plain text or forms without asking first.
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise StudioError("the request body must be sent as application/json", 415)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_JSON_BYTES:
                raise StudioError(f"the request body is over the studio's limit of {MAX_JSON_BYTES // 2**20} MB", 413)
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks))
        except ValueError:
            raise StudioError("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise StudioError("the request body is not a JSON object")
        return body

    def ops_of(body: dict) -> list[str]:
        ops = body.get("ops", [])
        if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
            raise StudioError("ops must be a list of op strings")
        if len(ops) > MAX_OPS:
            raise StudioError(f"{len(ops)} ops in one request: the studio takes at most {MAX_OPS}", 413)
        return ops

    async def page(request: Request):
        return Response(assets["index.html"].read_bytes(), media_type=MEDIA_TYPES[".html"])

    async def static(request: Request):
        path = assets.get(request.path_params["path"])
        if path is None:
            return error("not found", 404)
        return Response(path.read_bytes(), media_type=MEDIA_TYPES[path.suffix],
                        headers={"Cache-Control": "no-cache"})

    async def get_info(request: Request):
        return JSONResponse(info())

    async def upload(request: Request):
        given = request.query_params.get("name")  # the user's own name: the recipe names it
        name = safe_name(given)
        limit = studio.max_upload_bytes
        chunks, size = [], 0
        # Counted as it comes, kept only up to the limit. An oversized body is still read (to twice the limit)
        # before the answer: a browser whose upload is cut off mid-way shows a network error, not the reason.
        async for chunk in request.stream():
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif size > 2 * limit:
                break
        if size > limit:
            declared = request.headers.get("content-length", "")
            size = int(declared) if declared.isdigit() else size
            raise StudioError(f"{name}: {size / 2**20:.1f} MB is over the studio's limit of {limit / 2**20:.0f} MB",
                              413)
        tab = request.headers.get("x-mgpe-tab", "")[:64]  # the page's tab: each keeps its own faces
        held = tuple(request.headers.get("x-mgpe-held", "").split(",")[:2])  # the faces the tab shows
        face = await run_in_threadpool(studio.upload, given, b"".join(chunks), tab, held)
        return JSONResponse(face_json(face))

    async def face_file(request: Request):
        face = studio.face(request.path_params["id"])
        what = request.path_params["file"]
        from ..labels import colorize

        images = {"aligned.png": lambda: face.face.image, "mask.png": lambda: face.parsed,
                  "mask.preview.png": lambda: colorize(face.parsed),
                  "photo.png": lambda: face.face.photo if face.face.photo is not None else face.face.image}
        if what not in images:
            return error("not found", 404)
        return Response(await run_in_threadpool(png_bytes, images[what]()), media_type="image/png")

    async def apply_ops(request: Request):
        face = studio.face(request.path_params["id"])
        body = await json_body(request)
        labels = decode_labels(body.get("labels"), face.parsed.shape)
        out = await run_in_threadpool(studio.apply_ops, face.id, labels, ops_of(body))
        return JSONResponse({"labels": encode_labels(out), "changed": int((out != labels).sum())})

    async def edit(request: Request):
        face = studio.face(request.path_params["id"])
        body = await json_body(request)
        labels = decode_labels(body.get("labels"), face.parsed.shape)
        result = await run_in_threadpool(studio.edit, face.id, labels, ops_of(body))
        return JSONResponse(result_json(result))

    def pair(body: dict) -> tuple[str, str]:
        target, source = body.get("target"), body.get("source")
        if not isinstance(target, str) or not isinstance(source, str):
            raise StudioError("name the target and the source photo (their ids)")
        return target, source

    async def swap(request: Request):
        target, source = pair(await json_body(request))
        return JSONResponse(result_json(await run_in_threadpool(studio.swap, target, source)))

    async def transfer(request: Request):
        body = await json_body(request)
        target, source = pair(body)
        components = body.get("components", [])
        if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
            raise StudioError("components must be a list of component names")
        return JSONResponse(result_json(await run_in_threadpool(studio.transfer, target, source, components)))

    async def result_file(request: Request):
        from ..labels import colorize

        result = studio.result(request.path_params["id"])
        what = request.path_params["file"]
        if what not in RESULT_FILES:
            return error("not found", 404)
        headers = {}
        if request.query_params.get("download"):
            headers["Content-Disposition"] = f'attachment; filename="{result.stem}{RESULT_FILES[what]}"'
        if what == "recipe.txt":
            return Response(result.recipe, media_type="text/plain; charset=utf-8", headers=headers)
        images = {"result.png": lambda: result.image, "aligned.png": lambda: result.result.aligned,
                  "mask.png": lambda: result.result.mask.labels,
                  "mask.preview.png": lambda: colorize(result.result.mask.labels)}
        return Response(await run_in_threadpool(png_bytes, images[what]()), media_type="image/png", headers=headers)

    routes = [
        Route("/", page), Route("/static/{path:path}", guarded(static)), Route("/api/info", get_info),
        Route("/api/faces", guarded(upload), methods=["POST"]),
        Route("/api/faces/{id}/ops", guarded(apply_ops), methods=["POST"]),
        Route("/api/faces/{id}/edit", guarded(edit), methods=["POST"]),
        Route("/api/faces/{id}/{file}", guarded(face_file)),
        Route("/api/swap", guarded(swap), methods=["POST"]),
        Route("/api/transfer", guarded(transfer), methods=["POST"]),
        Route("/api/results/{id}/{file}", guarded(result_file)),
    ]
    hosts = allowed_hosts or ["127.0.0.1", "localhost", "::1"]
    app = Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])
    app.state.studio = studio
    return app


def hosts_for(host: str) -> list[str]:
    """Host headers to accept when listening on `host`: anything on all interfaces, else it and loopback."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return sorted({host, "127.0.0.1", "localhost", "::1"})


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the server starts: a busy port is a one-line error, port 0 picks a free
    one, and connections made before the server runs wait in the backlog."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StudioError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # all interfaces: this machine's own address
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


@dataclass
class RunningServer:
    """A studio served from a background thread (tests, the screenshot script); stop() ends it."""

    url: str
    app: object
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def config_for(app, host: str):
    import uvicorn

    return uvicorn.Config(app, host=host, log_level="warning", access_log=False, lifespan="off")


def serve_in_thread(studio: Studio | None = None, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    import uvicorn

    app = create_app(studio, allowed_hosts=hosts_for(host))
    sock = listen(host, port)
    server = uvicorn.Server(config_for(app, host))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="mgpe-studio")
    thread.start()
    return RunningServer(url_of(sock), app, server, thread)


def serve(studio: Studio, sock: socket.socket, host: str) -> None:
    """Serve until Ctrl-C on an already listening socket."""
    import uvicorn

    uvicorn.Server(config_for(create_app(studio, allowed_hosts=hosts_for(host)), host)).run(sockets=[sock])
