"""mgpe studio: its JSON/PNG endpoints on a real server, bad uploads, concurrency, the command, and a real browser."""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the studio extra is not installed (pip install -e '.[studio]')")
pytest.importorskip("uvicorn", reason="the studio extra is not installed (pip install -e '.[studio]')")

from mgpe_toolkit.labels import LABEL_INDEX, face_hair_region  # noqa: E402
from mgpe_toolkit.maskops import apply_ops  # noqa: E402

SKIN, HAIR = LABEL_INDEX["skin"], LABEL_INDEX["hair"]
CHROMIUM = os.environ.get("MGPE_CHROMIUM", "/usr/bin/chromium")
# Without the networking flags Debian's chromium waits on connections this machine refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def read_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def labels_of(text: str, size: int = 256) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.uint8).reshape(size, size)


def b64(labels: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(labels, np.uint8).tobytes()).decode()


class Client:
    """A small HTTP client over urllib for the studio's endpoints: (status, body) without raising on 4xx."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, data: bytes | None = None, headers: dict | None = None):
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def get(self, path: str):
        return self.call("GET", path)

    def post(self, path: str, payload=None, raw: bytes | None = None):
        if raw is not None:
            return self.call("POST", path, raw, {"Content-Type": "application/octet-stream"})
        return self.call("POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def json(self, method: str, path: str, payload=None, raw: bytes | None = None, status: int = 200) -> dict:
        got, body, _ = self.get(path) if method == "GET" else self.post(path, payload, raw)
        assert got == status, (path, got, body[:300])
        return json.loads(body)


@pytest.fixture(scope="module")
def server():
    from mgpe_toolkit.studio.server import serve_in_thread
    from mgpe_toolkit.studio.session import Studio

    running = serve_in_thread(Studio(max_upload_bytes=4 * 2**20))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server.url)


@pytest.fixture(scope="module")
def face(client, astronaut) -> dict:
    return client.json("POST", "/api/faces?name=astronaut.png", raw=png(astronaut))


def test_page_assets_are_the_packages_own_and_nothing_else_is_served(client):
    status, page, headers = client.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    text = page.decode()
    for asset, kind in (("studio.js", "text/javascript"), ("studio.css", "text/css")):
        assert f'/static/{asset}' in text
        status, body, headers = client.get(f"/static/{asset}")
        assert status == 200 and headers["content-type"].startswith(kind)
        assert "http://" not in body.decode() and "https://" not in body.decode()  # offline: no CDN
    assert "http://" not in text and "https://" not in text
    for path in ("/static/../session.py", "/static/%2e%2e/session.py", "/static/..%2fsession.py",
                 "/static/%2e%2e%2f%2e%2e%2fpyproject.toml", "/static//etc/passwd", "/static/__init__.py",
                 "/api/faces/x/../../static/studio.js"):
        assert client.get(path)[0] == 404, path
    assert client.call("GET", "/", headers={"Host": "evil.example"})[0] == 400  # DNS rebinding
    info = client.json("GET", "/api/info")
    assert [l["name"] for l in info["labels"]][:2] == ["background", "skin"] and len(info["labels"]) == 19
    assert info["labels"][HAIR]["color"] == "#0000cc"


def test_upload_parse_ops_generate_download_and_the_recipe_reproduces_it(client, face, astronaut, tmp_path):
    from typer.testing import CliRunner

    from mgpe_toolkit.cli import app
    from mgpe_toolkit.io import read_image, read_mask

    parsed = labels_of(face["labels"])
    assert face["name"] == "astronaut.png" and face["photo_size"] == [512, 512] and face["size"] == 256
    assert (parsed == HAIR).sum() > 5000 and (parsed == SKIN).sum() > 5000
    assert np.array_equal(read_png(client.get(face["urls"]["mask"])[1]), parsed)
    assert read_png(client.get(face["urls"]["aligned"])[1]).shape == (256, 256, 3)
    assert np.array_equal(read_png(client.get(face["urls"]["photo"])[1]), astronaut)

    # The op grammar on the shown mask, as on the CLI; applied in two requests = applied as one list.
    ops = ["hair->skin@forehead", "grow:eyes:2"]
    step = client.json("POST", f"/api/faces/{face['id']}/ops", {"labels": face["labels"], "ops": ops[:1]})
    step = client.json("POST", f"/api/faces/{face['id']}/ops", {"labels": step["labels"], "ops": ops[1:]})
    edited = labels_of(step["labels"])
    assert np.array_equal(edited, apply_ops(parsed, ops)) and step["changed"] > 0

    result = client.json("POST", f"/api/faces/{face['id']}/edit", {"labels": step["labels"], "ops": ops})
    assert result["kind"] == "edit" and result["seconds"] > 0
    assert "mgpe edit astronaut.png -m 'hair->skin@forehead' -m grow:eyes:2" in result["recipe"]
    pasted = read_png(client.get(result["after"]["pasted"])[1])
    changed = np.abs(pasted.astype(int) - astronaut).sum(axis=2) > 0
    assert pasted.shape == astronaut.shape and changed.any()
    status, mask_png, headers = client.get(result["downloads"]["mask.png"]["url"])
    assert headers["content-disposition"] == 'attachment; filename="astronaut.studio.mask.png"'
    assert np.array_equal(read_png(mask_png), edited)

    # Painted by hand: the recipe points at the downloaded mask, and `mgpe edit` makes the same picture.
    painted = edited.copy()
    painted[120:160, 0:30] = HAIR  # long hair on the left
    assert (painted != edited).sum() > 300
    result = client.json("POST", f"/api/faces/{face['id']}/edit", {"labels": b64(painted), "ops": ops})
    downloads = result["downloads"]
    for name in ("mask.png", "mask.preview.png", "result.png", "recipe.txt"):
        (tmp_path / downloads[name]["filename"]).write_bytes(client.get(downloads[name]["url"])[1])
    (tmp_path / "astronaut.png").write_bytes(png(astronaut))
    recipe = (tmp_path / "astronaut.studio.txt").read_text()
    command = [line for line in recipe.splitlines() if line.startswith("mgpe ")]
    assert command == ["mgpe edit astronaut.png --mask astronaut.studio.mask.png -o astronaut.studio.png"], recipe
    assert np.array_equal(read_mask(tmp_path / "astronaut.studio.mask.preview.png"), painted)
    studio_result = read_image(tmp_path / "astronaut.studio.png")
    (tmp_path / "astronaut.studio.png").unlink()
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        run = CliRunner().invoke(app, command[0].split()[1:])
    finally:
        os.chdir(cwd)
    assert run.exit_code == 0, run.output
    assert np.array_equal(read_image(tmp_path / "astronaut.studio.png"), studio_result)


def test_swap_and_transfer_with_a_second_photo(client, face, astronaut, grace_hopper):
    source = client.json("POST", "/api/faces?name=grace%20hopper.jpg", raw=png(grace_hopper))
    assert source["name"] == "grace_hopper.jpg"
    region = face_hair_region(labels_of(face["labels"]))
    swap = client.json("POST", "/api/swap", {"target": face["id"], "source": source["id"]})
    assert "mgpe swap+ 'grace hopper.jpg' astronaut.png -o astronaut.swap.png" in swap["recipe"]
    aligned = read_png(client.get(swap["after"]["aligned"])[1]).astype(int)
    before = read_png(client.get(face["urls"]["aligned"])[1]).astype(int)
    assert np.abs(aligned - before)[region].mean() > 10  # another person's face
    pasted = read_png(client.get(swap["after"]["pasted"])[1])
    assert pasted.shape == astronaut.shape and np.array_equal(pasted[-20:], astronaut[-20:])  # below the face

    hair = client.json("POST", "/api/transfer", {"target": face["id"], "source": source["id"],
                                                 "components": ["hair", "eyes"]})
    assert "mgpe transfer astronaut.png --from 'grace hopper.jpg' -c hair,left_eye,right_eye" in hair["recipe"]
    assert np.array_equal(read_png(client.get(hair["downloads"]["mask.png"]["url"])[1]), labels_of(face["labels"]))
    for components, reason in (([], "pick at least one component"), (["nose"], "'nose' is not a component")):
        got = client.json("POST", "/api/transfer", {"target": face["id"], "source": source["id"],
                                                    "components": components}, status=400)
        assert reason in got["error"]
    assert "unknown photo" in client.json("POST", "/api/swap", {"target": face["id"], "source": "gone"},
                                          status=404)["error"]


def test_bad_uploads_get_a_4xx_with_the_reason_and_the_server_stays_up(client, astronaut):
    from PIL import Image

    good = png(astronaut)
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, format="PNG")  # 144 MP in a few kB: a decompression bomb
    cases = [
        ("corrupt.png", good[: len(good) // 2], 422, "corrupt.png: truncated image file"),
        ("notes.txt", b"these are not pixels\n" * 50, 422, "notes.txt: not a readable image"),
        ("bomb.png", buf.getvalue(), 422, "bomb.png: refused as a decompression bomb"),
        ("big.png", good + b"\0" * (4 * 2**20), 413, "big.png: 4.4 MB is over the studio's limit of 4 MB"),
        ("grey.png", png(np.full((300, 300, 3), 128, np.uint8)), 422, "grey.png: no face found"),
        ("empty.png", b"", 400, "empty.png: empty file"),
        ("../../etc/x.png", b"GIF89a", 422, "x.png: "),
    ]
    for name, data, status, reason in cases:
        got = client.json("POST", f"/api/faces?name={urllib.request.quote(name)}", raw=data, status=status)
        assert got["error"].startswith(reason), (name, got)
        assert "\n" not in got["error"] and "Traceback" not in got["error"]
    assert client.json("POST", "/api/faces?name=again.png", raw=good)["name"] == "again.png"  # still up


def test_bad_requests_are_one_line_errors(client, face):
    path = f"/api/faces/{face['id']}"
    mask = face["labels"]
    for payload, status, reason in (
        ({"labels": mask, "ops": ["hair->nowhere"]}, 400, "bad mask op 'hair->nowhere': unknown name 'nowhere'"),
        ({"labels": mask, "ops": ["from:mouth:/etc/hosts"]}, 400,
         "bad mask op 'from:mouth:/etc/hosts': from: reads a mask file on the server"),
        ({"labels": b64(np.zeros((10, 10)))}, 400, "the mask has 100 labels, the face 65536 (256×256)"),
        ({"labels": b64(np.full((256, 256), 30))}, 400, "the mask holds value 30; labels stop at 18"),
        ({"labels": "%%%"}, 400, "the mask is not valid base64"),
        ({"ops": ["hair->skin"]}, 400, "the request has no mask"),
        ({"labels": mask, "ops": "hair->skin"}, 400, "ops must be a list of op strings"),
    ):
        for action in ("ops", "edit"):
            got = client.json("POST", f"{path}/{action}", payload, status=status)
            assert got["error"].startswith(reason), (payload, got)
    status, body, _ = client.call("POST", f"{path}/ops", b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["error"] == "the request body is not JSON"
    assert client.json("GET", "/api/results/nothing/result.png", status=404)["error"].startswith("unknown result")
    assert client.json("GET", f"{path}/secret.png", status=404)["error"] == "not found"


def test_cross_site_oversized_and_endless_requests_are_refused_unread(client, face, astronaut):
    path = f"/api/faces/{face['id']}/ops"
    ops = json.dumps({"labels": face["labels"], "ops": ["hair->skin"]}).encode()
    # Another site's page (a "simple" request: text/plain needs no preflight) may not drive the studio.
    for headers in ({"Origin": "http://evil.example", "Content-Type": "text/plain"},
                    {"Origin": "http://evil.example", "Content-Type": "application/json"}):
        status, body, _ = client.call("POST", path, ops, headers)
        assert status == 403 and "evil.example" in json.loads(body)["error"], body
    status, body, _ = client.call("POST", "/api/faces?name=x.png", png(astronaut), {"Origin": "http://evil.example"})
    assert status == 403, body
    status, body, _ = client.call("POST", path, ops, {"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in json.loads(body)["error"]
    # The page's own origin passes.
    host = client.url.split("//", 1)[1].rstrip("/")
    status, body, _ = client.call("POST", path, ops, {"Origin": f"http://{host}", "Content-Type": "application/json"})
    assert status == 200, body
    status, body, _ = client.call("POST", path, b'{"ops": ["' + b"x" * (9 * 2**20) + b'"]}',
                                  {"Content-Type": "application/json"})
    assert status == 413 and "limit" in json.loads(body)["error"]
    got = client.json("POST", path, {"labels": face["labels"], "ops": ["grow:eyes:1"] * 10_000}, status=413)
    assert "at most 200" in got["error"]


def test_one_tabs_uploads_never_push_out_another_tabs_face(client, astronaut):
    from mgpe_toolkit.studio.session import KEEP_FACES

    def upload(tab):
        status, body, _ = client.call("POST", "/api/faces?name=a.png", png(astronaut), {"X-Mgpe-Tab": tab})
        assert status == 200, body
        return json.loads(body)["id"]

    mine = upload("tab-a")
    theirs = [upload("tab-b") for _ in range(KEEP_FACES + 2)]
    assert client.get(f"/api/faces/{mine}/mask.png")[0] == 200  # A's face is still there
    assert client.get(f"/api/faces/{theirs[0]}/mask.png")[0] == 404  # B's oldest made room for B's newest
    assert client.get(f"/api/faces/{theirs[-1]}/mask.png")[0] == 200


def test_a_tabs_ninth_upload_keeps_the_photos_it_shows(client, astronaut):
    """The page holds its photo and second photo: uploads beyond the tab's KEEP_FACES push out older ones."""
    from mgpe_toolkit.studio.session import KEEP_FACES

    def upload(held=()):
        status, body, _ = client.call("POST", "/api/faces?name=a.png", png(astronaut),
                                      {"X-Mgpe-Tab": "tab-c", "X-Mgpe-Held": ",".join(held)})
        assert status == 200, body
        return json.loads(body)["id"]

    second = upload()
    photos = [upload((second,))]
    for _ in range(KEEP_FACES):
        photos.append(upload((photos[-1], second)))
    assert client.get(f"/api/faces/{second}/mask.png")[0] == 200  # held all along: still there
    assert client.get(f"/api/faces/{photos[0]}/mask.png")[0] == 404  # an older photo made room
    assert client.get(f"/api/faces/{photos[-1]}/mask.png")[0] == 200


def test_the_recipe_names_the_users_own_file(client, astronaut):
    face = client.json("POST", "/api/faces?name=" + urllib.parse.quote("my photo (1).png"), raw=png(astronaut))
    assert face["name"] == "my_photo__1_.png"  # what downloads are named after
    result = client.json("POST", f"/api/faces/{face['id']}/edit", {"labels": face["labels"], "ops": []})
    assert "mgpe edit 'my photo (1).png' --mask my_photo__1_.studio.mask.png" in result["recipe"], result["recipe"]


def test_the_palette_has_readable_names():
    from mgpe_toolkit.studio.server import info

    titles = {label["name"]: label["title"] for label in info()["labels"]}
    assert titles["eye_g"] == "eyeglasses" and titles["ear_r"] == "earring" and titles["neck_l"] == "necklace"
    assert all("_" not in t for t in titles.values())


def test_concurrent_requests_are_safe(client, face, astronaut):
    parsed = labels_of(face["labels"])
    jobs = {f"ops-{i}": ("ops", [op]) for i, op in enumerate(["hair->skin@forehead", "grow:eyes:3", "shrink:hair:4",
                                                              "move:mouth:0,5", "scale:eyes:1.3"])}
    jobs.update({f"edit-{i}": ("edit", ["hair->skin@forehead"]) for i in range(3)})
    jobs["upload"] = ("upload", [])
    out, errors = {}, []
    barrier = threading.Barrier(len(jobs))

    def work(key, action, ops):
        try:
            barrier.wait()
            if action == "upload":
                out[key] = client.json("POST", "/api/faces?name=twin.png", raw=png(astronaut))
            else:
                out[key] = client.json("POST", f"/api/faces/{face['id']}/{action}",
                                       {"labels": face["labels"], "ops": ops})
        except Exception as exc:  # noqa: BLE001 (reported below, with its job)
            errors.append((key, exc))

    threads = [threading.Thread(target=work, args=(k, *v)) for k, v in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for key, (action, ops) in jobs.items():
        if action == "ops":
            assert np.array_equal(labels_of(out[key]["labels"]), apply_ops(parsed, ops)), key
    results = [read_png(client.get(out[f"edit-{i}"]["after"]["pasted"])[1]) for i in range(3)]
    assert all(np.array_equal(r, results[0]) for r in results)
    assert np.array_equal(labels_of(out["upload"]["labels"]), parsed)


def test_mgpe_studio_command_prints_its_url_and_binds_loopback(server):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "300"}
    proc = subprocess.Popen([sys.executable, "-m", "mgpe_toolkit", "studio", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("mgpe studio at http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        url = line.split()[3]
        assert "parse unet" in line and "generate classical" in line
        status, page, _ = Client(url).get("/")
        assert status == 200 and b"mgpe studio" in page
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    port = server.url.rstrip("/").rsplit(":", 1)[1]
    busy = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "studio", "--port", port], capture_output=True,
                          text=True, env=env, timeout=120)
    assert busy.returncode == 2 and busy.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: "), busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1


def _screen(page) -> np.ndarray:
    """What the browser shows, as RGB (the device pixels of the viewport)."""
    import cv2

    shot = cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    return shot[..., ::-1].astype(int)


def _check_what_is_drawn(page, shown, at, x: int, y: int) -> None:
    """The screen, not the canvas data: the painted skin shows over the photo, the photo shows under the mask,
    and the "after" thumbnails are not the "before" ones where the stroke went."""
    px, py = (round(v) for v in at(x, y))
    with_mask = _screen(page)[py, px]
    page.fill("#opacity", "0")
    page.dispatch_event("#opacity", "input")
    bare = _screen(page)[py, px]
    page.fill("#opacity", "55")
    page.dispatch_event("#opacity", "input")
    photo = shown.face.image[y, x].astype(int)
    assert np.abs(bare - photo).max() < 40, (bare, photo)  # the photo itself is on screen
    assert with_mask[0] - with_mask[2] > bare[0] - bare[2] + 30, (with_mask, bare)  # and the skin overlay over it
    screen = _screen(page)

    def shown_at(selector: str, fx: float, fy: float) -> np.ndarray:
        b = page.locator(selector).bounding_box()
        return screen[round(b["y"] + fy * b["height"]), round(b["x"] + fx * b["width"])]

    spots = [((x + dx) / 256, (y + dy) / 256) for dx in (-4, 0, 4) for dy in (-2, 0, 2)]
    before = np.array([shown_at("#before-aligned", fx, fy) for fx, fy in spots])
    after = np.array([shown_at("#after-aligned", fx, fy) for fx, fy in spots])
    assert np.abs(after - before).sum(axis=1).mean() > 30, (before, after)


def overlay_at(x: int, y: int) -> str:
    """JavaScript for the overlay's RGB at a mask pixel (the colour of the label the page shows there)."""
    canvas = "document.querySelector('#mask-canvas').getContext('2d')"
    return f"Array.from({canvas}.getImageData({x}, {y}, 1, 1).data.slice(0, 3))"


def _stroke_row(parsed: np.ndarray, brush: int) -> tuple[int, int, int]:
    """(y, x0, x1): a row above the brows with a long run of hair, where a stroke paints nothing but hair."""
    brows = np.nonzero(np.isin(parsed, [LABEL_INDEX["l_brow"], LABEL_INDEX["r_brow"]]))[0].min()
    best = (0, 0, 0)
    for y in range(brush, brows - brush):
        hair = (parsed[y - brush // 2:y + brush // 2 + 1] == HAIR).all(axis=0)
        xs = np.flatnonzero(hair)
        if xs.size:
            runs = np.split(xs, np.flatnonzero(np.diff(xs) > 1) + 1)
            run = max(runs, key=len)
            if len(run) > best[2] - best[1]:
                best = (y, int(run[0]) + brush, int(run[-1]) - brush)
    assert best[2] - best[1] >= 30, "no row of hair wide enough for the stroke"
    return best


def test_browser_paints_skin_over_hair_generates_and_downloads(server, astronaut, grace_hopper, tmp_path):
    """A real Chromium: upload, a mouse stroke of skin over the hair, Generate, download; undo/redo keys; a phone."""
    import cv2

    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from mgpe_toolkit.io import read_image, read_mask

    photo, second = tmp_path / "astronaut.png", tmp_path / "grace_hopper.png"
    photo.write_bytes(png(astronaut))
    second.write_bytes(png(grace_hopper))
    brush = 12
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
            problems = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))
            page.goto(server.url)
            page.wait_for_selector("body[data-app=ready]")
            page.set_input_files("#photo-input", str(photo))
            page.wait_for_selector("#stage:not(.empty)")
            page.wait_for_selector("body[data-state=ready]")
            studio = server.app.state.studio
            shown = list(studio.faces.values())[-1]
            assert shown.name == "astronaut.png"
            parsed = shown.parsed
            page.set_input_files("#source-input", str(second))
            page.wait_for_selector("#swap:not([disabled])")

            y, x0, x1 = _stroke_row(parsed, brush)
            page.click(f'#palette button[data-label="{SKIN}"]')
            assert page.text_content("#current-label") == "skin"
            page.fill("#size", str(brush))
            box = page.locator("#mask-canvas").bounding_box()

            def at(x: float, yy: float) -> tuple[float, float]:  # a mask pixel's centre on the page
                return box["x"] + (x + 0.5) * box["width"] / 256, box["y"] + (yy + 0.5) * box["height"] / 256

            page.mouse.move(*at(x0, y))
            page.mouse.down()
            page.mouse.move(*at(x1, y), steps=25)
            page.mouse.up()
            page.click("#generate")
            page.wait_for_function("document.body.dataset.result && document.body.dataset.state === 'ready'")
            assert "edit in" in page.text_content("#time")
            if os.environ.get("MGPE_STUDIO_SCREENSHOT"):
                page.screenshot(path=os.environ["MGPE_STUDIO_SCREENSHOT"])
            _check_what_is_drawn(page, shown, at, (x0 + x1) // 2, y)

            def download(selector: str) -> Path:
                with page.expect_download() as got:
                    page.click(selector)
                target = tmp_path / got.value.suggested_filename
                got.value.save_as(target)
                return target

            mask_file = download("#dl-mask")
            assert mask_file.name == "astronaut.studio.mask.png"
            mask = read_mask(mask_file)
            result = read_image(download("#dl-result"))
            assert "--mask astronaut.studio.mask.png" in download("#dl-recipe").read_text()

            # The stroke's core is skin; far from the stroke the mask is the parsed one.
            r = brush // 2
            core = np.zeros_like(parsed, bool)
            core[y - r // 2:y + r // 2 + 1, x0:x1 + 1] = True
            near = np.zeros_like(parsed, bool)
            near[max(0, y - r - 2):y + r + 3, max(0, x0 - r - 2):x1 + r + 3] = True
            assert (mask[core] == SKIN).all() and (parsed[core] == HAIR).all()
            assert np.array_equal(mask[~near], parsed[~near])

            # In the photo: the result differs inside the stroke and is the photo outside the face region.
            inverse = shown.face.alignment.inverse()
            h, w = astronaut.shape[:2]
            stroke = cv2.warpAffine(core.astype(np.uint8), inverse, (w, h), flags=cv2.INTER_NEAREST) > 0
            region = face_hair_region(parsed) | face_hair_region(mask)
            face_region = cv2.warpAffine(region.astype(np.float32), inverse, (w, h), flags=cv2.INTER_LINEAR) > 0
            face_region = cv2.dilate(face_region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            diff = np.abs(result.astype(int) - astronaut.astype(int)).sum(axis=2)
            assert stroke.sum() > 100 and diff[stroke].mean() > 30, diff[stroke].mean()
            assert (diff[~face_region] == 0).all()

            # Undo and redo from the keyboard: the overlay at the stroke goes back to hair, then to skin.
            colour = overlay_at((x0 + x1) // 2, y)
            assert page.evaluate(colour) == [204, 0, 0]
            page.keyboard.press("Control+z")
            assert page.evaluate(colour) == [0, 0, 204]
            page.keyboard.press("Control+Shift+Z")
            assert page.evaluate(colour) == [204, 0, 0]

            # Pick the stroke's label, erase back to the parsed hair, fill that hair with hat, reset, then ops.
            middle = at((x0 + x1) // 2, y)
            page.click(f'#palette button[data-label="{LABEL_INDEX["hat"]}"]')
            page.keyboard.press("i")
            page.mouse.click(*middle)
            assert page.text_content("#current-label") == "skin"
            page.keyboard.press("e")
            page.mouse.move(*at(x0 - brush, y))
            page.mouse.down()
            page.mouse.move(*at(x1 + brush, y), steps=25)
            page.mouse.up()
            assert page.evaluate(colour) == [0, 0, 204]
            page.click(f'#palette button[data-label="{LABEL_INDEX["hat"]}"]')
            page.keyboard.press("f")
            page.mouse.click(*middle)
            hair_far = np.argwhere(parsed == HAIR)[0]  # the top row of hair, connected to the rest
            far = overlay_at(hair_far[1], hair_far[0])
            assert page.evaluate(colour) == page.evaluate(far) == [255, 51, 153]
            page.click("#reset")
            assert page.evaluate(colour) == page.evaluate(far) == [0, 0, 204]
            page.fill("#ops", "hair->skin@forehead")
            page.press("#ops", "Enter")
            page.wait_for_function(f"{colour}.join() === '204,0,0'")
            assert "ops applied: hair->skin@forehead" in page.text_content("#ops-list")
            page.fill("#ops", "grow:nowhere:2")
            page.press("#ops", "Enter")
            page.wait_for_selector("#status.error")
            assert page.text_content("#status").startswith("bad mask op 'grow:nowhere:2': unknown name 'nowhere'")

            # A phone-sized screen: one column, nothing wider than the screen, the main controls on it.
            page.set_viewport_size({"width": 390, "height": 844})
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            for selector in ("#mask-canvas", "#generate", "#palette", "#photo-input + label, label[for=photo-input]"):
                b = page.locator(selector).first.bounding_box()
                assert b and b["x"] >= 0 and b["x"] + b["width"] <= 390, selector
            assert not problems, problems
        finally:
            browser.close()
