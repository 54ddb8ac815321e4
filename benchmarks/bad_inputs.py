"""Hostile inputs: build a corpus of broken, odd and trap inputs, run align, parse, edit, batch, train and export on
it, and print per case the exit code, the first line of the message, the outputs left and whether a traceback
(a crash) showed or an input file was changed or lost.

    python benchmarks/bad_inputs.py [--keep DIR] [--only SUBSTRING ...]

A crash is a traceback, or an exit code other than 0, 1, 2. A lost file is an input whose bytes changed or that
disappeared. Outputs left count the files under the case's output folder (hidden temporary files separately).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Case:
    name: str
    args: list
    out: Path | None = None  # the output folder or file to count
    env: dict = field(default_factory=dict)
    expect_ok: bool = False  # 0 is the right answer (an odd but valid input)


def build_corpus(root: Path) -> dict[str, Path]:
    """Every odd input of issue 16, written under root/corpus; returns name -> path."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    c = root / "corpus"
    c.mkdir(parents=True)
    astro = skimage.data.astronaut()
    grace = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    files = {}

    def put(name, write):
        files[name] = c / name
        write(c / name)

    put("good.png", lambda p: Image.fromarray(astro).save(p))
    put("truncated.jpg", lambda p: p.write_bytes(_jpeg(astro)[:5000]))
    put("zero-byte.png", lambda p: p.write_bytes(b""))
    put("text-as.jpg", lambda p: p.write_text("this is not a picture\n"))
    put("one-pixel.png", lambda p: Image.fromarray(astro[:1, :1]).save(p))
    put("tiny-25.png", lambda p: Image.fromarray(np.asarray(Image.fromarray(astro).resize((25, 25)))).save(p))
    put("sixteen-bit.png", lambda p: Image.fromarray((astro[..., 1].astype(np.uint16) * 257)).save(p))
    put("cmyk.jpg", lambda p: Image.fromarray(grace).convert("CMYK").save(p))
    put("rgba.png", lambda p: Image.fromarray(np.dstack([astro, np.full(astro.shape[:2], 200, np.uint8)])).save(p))
    put("exif-rotated.jpg", lambda p: _exif_rotated(Image.fromarray(grace), p))
    put("huge-6000.jpg", lambda p: Image.fromarray(astro).resize((6000, 6000)).save(p, quality=80))
    put("ünïcødé 名前.png", lambda p: Image.fromarray(grace).save(p))
    put("no-face.png", lambda p: Image.fromarray(skimage.data.coffee()).save(p))
    put("many-faces.png", lambda p: Image.fromarray(_group(astro, grace)).save(p))
    put("grey.png", lambda p: Image.fromarray(astro).convert("L").save(p))
    put("[bold]x[.png", lambda p: Image.fromarray(astro).save(p))
    put("face.jpg", lambda p: Image.fromarray(grace).save(p))
    put("face.png", lambda p: Image.fromarray(astro).save(p))
    put("animated.gif", lambda p: Image.fromarray(astro).save(p))
    put("notes.txt", lambda p: p.write_text("not an image"))
    os.symlink(c, c / "loop")  # a symlink loop: the folder inside itself
    return files


def _jpeg(arr) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _exif_rotated(img, path: Path) -> None:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    img.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)


def _group(a, b) -> np.ndarray:
    import cv2

    canvas = np.full((900, 900, 3), 90, np.uint8)
    for i in range(9):
        face = cv2.resize(a if i % 2 else b[:512], (300, 300), interpolation=cv2.INTER_AREA)
        y, x = divmod(i, 3)
        canvas[y * 300:(y + 1) * 300, x * 300:(x + 1) * 300] = face
    return canvas


def cases(root: Path, files: dict[str, Path]) -> list[Case]:
    c, o = root / "corpus", root / "out"
    good = files["good.png"]
    out: list[Case] = []
    for name, path in files.items():
        if name != "notes.txt":
            out.append(Case(f"edit {name}", ["edit", "-m", "hair=skin", path, "-o", o / f"edit-{path.stem}.png"],
                            o / f"edit-{path.stem}.png"))
    out += [
        Case("align corpus", ["align", c, o / "align"], o / "align"),
        Case("align --all-faces corpus", ["align", "--all-faces", c, o / "align-all"], o / "align-all"),
        Case("parse corpus", ["parse", c, o / "parse", "--preview"], o / "parse"),
        Case("batch corpus", ["batch", c, o / "batch", "-m", "hair=skin", "--workers", "2"], o / "batch"),
        Case("align out = in", ["align", c, c], None),
        Case("parse out inside in", ["parse", c, c / "masks", "--overwrite"], c / "masks"),
        Case("batch in inside out", ["batch", c, root, "-m", "hair=skin", "--overwrite"], None),
        Case("align out is a file", ["align", c, root / "a-file"], None),
        Case("op grow:eyes:100000", ["edit", "-m", "grow:eyes:100000", good, "-o", o / "x1.png"], o / "x1.png"),
        Case("op move huge", ["edit", "-m", "move:mouth:99999999999999999999,0", good, "-o", o / "x2.png"], o / "x2.png"),
        Case("op [/]", ["edit", "-m", "[/]", good, "-o", o / "x3.png"], o / "x3.png"),
        Case("op hair- (shell ate >skin)", ["edit", "-m", "hair-", good, "-o", o / "x4.png"], o / "x4.png"),
        Case("-o big.txt", ["edit", "-m", "hair=skin", good, "-o", o / "big.txt"], o / "big.txt"),
        Case("--save-mask m.jpg", ["edit", "-m", "hair=skin", good, "-o", o / "x5.png", "--save-mask", o / "m.jpg"],
             o / "x5.png"),
        Case("MGPE_MAX_PIXELS=abc", ["edit", "-m", "hair=skin", good, "-o", o / "x6.png"], o / "x6.png",
             env={"MGPE_MAX_PIXELS": "abc"}),
        Case("swap+ from no face", ["swap+", files["no-face.png"], good, "-o", o / "x7.png"], o / "x7.png"),
        Case("-o onto another photo", ["edit", "-m", "hair=skin", good, "-o", files["no-face.png"]], None),
        Case("batch --swap-from truncated", ["batch", c, o / "b2", "--swap-from", files["truncated.jpg"]], o / "b2"),
        Case("batch --swap-from no face", ["batch", c, o / "b3", "--swap-from", files["no-face.png"]], o / "b3"),
        Case("train synthetic:0", ["train", "--data", "synthetic:0", "--out", o / "t1", "--steps", "1"], o / "t1"),
        Case("train synthetic:-5", ["train", "--data", "synthetic:-5", "--out", o / "t2", "--steps", "1"], o / "t2"),
        Case("train synthetic (no :N)", ["train", "--data", "synthetic", "--out", o / "t3", "--steps", "1"], o / "t3"),
        Case("train --set batch=0", ["train", "--data", "synthetic:4", "--set", "batch=0", "--out", o / "t4"], o / "t4"),
        Case("train --set lr=-1", ["train", "--data", "synthetic:4", "--set", "lr=-1", "--out", o / "t5"], o / "t5"),
        Case("train checkpoint_every=0", ["train", "--data", "synthetic:4", "--set", "checkpoint_every=0",
                                          "--out", o / "t6"], o / "t6"),
        Case("train --data corpus (no masks)", ["train", "--data", c, "--out", o / "t7", "--steps", "1"], o / "t7"),
        Case("train parser --size 8192", ["train", "parser", "--data", "synthetic:4", "--size", "8192",
                                          "--out", o / "t8"], o / "t8"),
        Case("batch onnx, corrupt manifest", ["batch", c, o / "b4", "-m", "hair=skin", "--backend", "onnx",
                                              "--exports", root / "bad-exports"], o / "b4"),
        Case("batch onnx, truncated encoders.onnx", ["batch", c, o / "b5", "-m", "hair=skin", "--backend", "onnx",
                                                     "--exports", root / "cut-exports"], o / "b5"),
        Case("paste-back, singular sidecar", ["paste-back", root / "sing" / "a.png", "-o", o / "x8.png"], o / "x8.png"),
        Case("edit, empty sidecar", ["edit", "-m", "hair=skin", root / "empty" / "a.png", "-o", o / "x9.png"],
             o / "x9.png", expect_ok=True),
        Case("missing input", ["edit", "-m", "hair=skin", root / "nope.png"], None),
        # Round two (issue 38): outputs that are inputs or each other, pipes, training values, caches.
        Case("edit -o = the input", ["edit", "-m", "hair=skin", good, "-o", good], None),
        Case("edit --save-mask = -o", ["edit", "-m", "hair=skin", good, "-o", o / "r.png", "--save-mask", o / "r.png"],
             o / "r.png"),
        Case("edit -o = --save-mask's preview", ["edit", "-m", "hair=skin", good, "-o", o / "m.preview.png",
                                                 "--save-mask", o / "m.png"], o / "m.preview.png"),
        Case("swap+ -o = the source", ["swap+", good, files["grey.png"], "-o", good], None),
        Case("synth -o = --sources", ["synth", root / "a-mask.png", "--sources", c, "-o", c], None),
        Case("edit a FIFO", ["edit", "-m", "hair=skin", root / "pipe.png", "-o", o / "x10.png"], o / "x10.png"),
        Case("edit --mask a FIFO", ["edit", "--mask", root / "pipe.png", good, "-o", o / "x11.png"], o / "x11.png"),
        Case("edit, cache in /proc", ["edit", "-m", "hair=skin", good, "-o", o / "x12.png"], o / "x12.png",
             env={"XDG_CACHE_HOME": "/proc"}, expect_ok=True),
        Case("edit, ASCII terminal", ["edit", "-m", "hair=skin", good, "-o", o / "résultat.png"], o / "résultat.png",
             env={"PYTHONIOENCODING": "ascii"}, expect_ok=True),
        Case("train --set seed=-1", ["train", "--data", "synthetic:4", "--set", "seed=-1", "--out", o / "t9"], o / "t9"),
        Case("train --set lr=1e309", ["train", "--data", "synthetic:4", "--set", "lr=1e309", "--out", o / "t10"],
             o / "t10"),
        Case("train --set batch=100000", ["train", "--data", "synthetic:4", "--set", "batch=100000",
                                          "--out", o / "t11"], o / "t11"),
        Case("train parser --lr inf", ["train", "parser", "--data", "synthetic:4", "--lr", "inf", "--out", o / "t12"],
             o / "t12"),
        Case("train parser --base 100000", ["train", "parser", "--data", "synthetic:4", "--base", "100000",
                                            "--out", o / "t13"], o / "t13"),
        Case("augment --seed -1", ["augment", root / "a-mask.png", "--sources", c, "--seed", "-1", "-o", o / "a1"],
             o / "a1"),
    ]
    return out


def prepare_exports(root: Path) -> None:
    """A corrupt manifest, an export with a truncated graph, and aligned crops with broken sidecars."""
    (root / "a-file").write_text("not a folder")
    os.mkfifo(root / "pipe.png")  # read, it would block forever
    from mgpe_toolkit.io import write_mask

    write_mask(root / "a-mask.png", np.ones((256, 256), np.uint8))
    (root / "bad-exports").mkdir()
    (root / "bad-exports" / "manifest.json").write_text('{"format": "mgpe-onnx-1", "graphs": {')
    run(["export", "onnx", "--out", root / "cut-exports", "--no-check"], {})
    enc = next((root / "cut-exports").glob("encoders*.onnx"))
    enc.write_bytes(enc.read_bytes()[:2000])
    run(["align", root / "corpus" / "good.png", root / "sing"], {})
    side = root / "sing" / "good.json"
    data = json.loads(side.read_text())
    data["matrix"] = [[0, 0, 0], [0, 0, 0]]
    side.write_text(json.dumps(data))
    for p in (root / "sing").iterdir():
        p.rename(p.with_name("a" + p.suffix))
    shutil.copytree(root / "sing", root / "empty")
    (root / "empty" / "a.json").write_text("")


def run(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mgpe_toolkit", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **env}, timeout=900)


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()}


def count(out: Path | None) -> tuple[int, int]:
    """(files, hidden temporary files) under an output folder or for one output file."""
    if out is None or not out.exists():
        return 0, 0
    if out.is_file():
        return 1, 0
    files = [p for p in out.rglob("*") if p.is_file() and "loop" not in p.parts]
    hidden = [p for p in files if p.name.startswith(".") and (".tmp" in p.name or p.name.endswith(".claim"))]
    return len(files) - len(hidden), len(hidden)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", help="build the corpus here and keep it (default: a temporary folder)")
    ap.add_argument("--only", action="append", help="run only cases whose name holds this (repeatable)")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mgpe-bad-"))
    if root.exists() and any(root.iterdir()):
        sys.exit(f"{root}: not empty")
    root.mkdir(parents=True, exist_ok=True)
    files = build_corpus(root)
    prepare_exports(root)
    before = digests(root / "corpus")
    crashes = lost = 0
    print(f"corpus: {len(files)} files in {root / 'corpus'} (plus a symlink loop)\n")
    print(f"{'case':38s} {'exit':>4s} {'outputs':>7s} {'tmp':>3s} {'s':>5s}  message")
    for case in cases(root, files):
        if args.only and not any(part in case.name for part in args.only):
            continue
        t = time.perf_counter()
        r = run(case.args, case.env)
        seconds = time.perf_counter() - t
        crashed = "Traceback" in r.stderr or r.returncode not in (0, 1, 2)
        changed = {k for k, v in digests(root / "corpus").items() if before.get(k, v) != v}
        gone = set(before) - set(digests(root / "corpus"))
        crashes += crashed
        lost += len(changed | gone)
        outputs, tmp = count(case.out)
        text = (r.stderr + r.stdout).splitlines()
        lines = [ln for ln in text if ln.startswith("error:")] or [ln for ln in text if ln.startswith("note:")]
        msg = lines[0] if lines else (r.stderr.strip().splitlines() or [""])[-1]
        flag = " CRASH" if crashed else ""
        flag += f" LOST {sorted(changed | gone)}" if changed or gone else ""
        flag += " (should succeed)" if case.expect_ok and r.returncode else ""
        print(f"{case.name[:38]:38s} {r.returncode:>4d} {outputs:>7d} {tmp:>3d} {seconds:5.1f}  {msg[:110]}{flag}")
    print(f"\ncrashes: {crashes}, files lost: {lost}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
