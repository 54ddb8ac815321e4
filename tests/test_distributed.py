"""Several training processes (gloo on CPU) train like one: same weights and gradients as one process at the
whole batch, exact resume, and a failed rank ends the run in one line with the last checkpoint intact.

Runs use a learning rate of 1e-6: Adam moves a weight by about lr whatever its gradient's size, so a gradient
near zero (e.g. a bias before a normalisation) flips its step's sign on float noise alone; with lr 1e-6 those
flips cannot feed back into the next steps' gradients, and comparing gradients (Adam's exp_avg) stays a sharp
test. (At lr 1e-3 two one-process runs with 1 and 2 threads already differ by up to 2e-3 after 3 steps.)
"""
import json
import sys
from pathlib import Path

import pytest
import torch

from mgpe_toolkit.train.ddp import World, share
from mgpe_toolkit.train.launch import launch
from mgpe_toolkit.errors import UsageError
from mgpe_toolkit.train.checkpoint import read_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import train  # noqa: E402
from run_cli import mgpe  # noqa: E402

WORKER = str(Path(__file__).parent / "ddp_worker.py")
# schedule=both rolls component features across the whole batch, vae draws the whole batch's noise.
GAN = {"lr": 1e-6, "schedule": "both", "vae": True}
PARSER = {"lr": 1e-6}  # the U-Net's batch norm: synced over ranks (GlooSyncBatchNorm)


def two_ranks(kind: str, out: Path, steps: int, overrides: dict, *extra: str):
    return launch([sys.executable, WORKER, kind, str(out), str(steps), json.dumps(overrides), *extra], 2,
                  out.parent / f"{out.name}-logs")


def compare(one: Path, two: Path) -> tuple[float, float]:
    """(largest weight difference, largest gradient difference relative to the tensor's gradient, in L2 norm),
    leaving out gradients that are zero in exact arithmetic (below 1e-6). The norm, not the largest element: one
    element's float noise after instance norm moved with the synthetic faces' pixels (OpenCV 4.11 -> 4.14)."""
    a, _ = read_checkpoint(one / "checkpoint.safetensors")
    b, _ = read_checkpoint(two / "checkpoint.safetensors")
    assert a.keys() == b.keys()
    weights = max((a[k] - b[k]).abs().max().item() for k in a if k.startswith("model.") and a[k].is_floating_point())
    grads = max(((a[k] - b[k]).norm() / a[k].norm()).item() for k in a
                if k.endswith(".exp_avg") and a[k].abs().max() > 1e-6)
    return weights, grads


@pytest.fixture(scope="module")
def gan_runs(tmp_path_factory):
    """One process and two at global batch 4, 3 steps (paired and unpaired), checkpoint every step."""
    root = tmp_path_factory.mktemp("gan")
    torch.set_num_threads(1)
    train("gan", str(root / "one"), 3, GAN)
    outcome = two_ranks("gan", root / "two", 3, GAN, "--snapshot-at", "2")
    assert outcome.code == 0, outcome
    return root


def test_two_gan_processes_train_like_one(gan_runs):
    weights, grads = compare(gan_runs / "one", gan_runs / "two")
    # Measured: weights 2e-6 (biases before instance norm, whose gradient is float noise), gradients 0.4-0.7%.
    assert weights < 2e-5 and grads < 0.02, (weights, grads)
    meta = read_checkpoint(gan_runs / "two" / "checkpoint.safetensors")[1]
    assert meta["step"] == 3 and meta["extra"]["world_size"] == 2
    logged = [json.loads(line) for line in (gan_runs / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2, 3]  # rank 0 alone logs


def test_two_parser_processes_train_like_one(tmp_path):
    torch.set_num_threads(1)
    train("parser", str(tmp_path / "one"), 3, PARSER)
    assert two_ranks("parser", tmp_path / "two", 3, PARSER).code == 0
    weights, grads = compare(tmp_path / "one", tmp_path / "two")
    assert weights < 1e-6 and grads < 1e-4, (weights, grads)  # measured 6e-8 and 2e-6


def test_resume_continues_exactly(gan_runs, tmp_path):
    """Two ranks resumed from step 2 give the uninterrupted run's step 3 bit for bit; resumed by one process
    (another world size), the same batch within the tolerance above."""
    import shutil

    for name in ("two", "one"):
        shutil.copytree(gan_runs / "two", tmp_path / name)
        shutil.copy(tmp_path / name / "checkpoint-2.safetensors", tmp_path / name / "checkpoint.safetensors")
    assert two_ranks("gan", tmp_path / "two", 3, GAN, "--resume").code == 0
    a, _ = read_checkpoint(tmp_path / "two" / "checkpoint.safetensors")
    b, _ = read_checkpoint(gan_runs / "two" / "checkpoint.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    trainer = train("gan", str(tmp_path / "one"), 3, GAN, resume=True)
    assert trainer.resumed_world_size == 2 and trainer.step == 3
    weights, grads = compare(gan_runs / "two", tmp_path / "one")
    assert weights < 2e-5 and grads < 0.02, (weights, grads)


def test_failed_rank_ends_the_run_in_one_line(tmp_path, capfd):
    out = tmp_path / "run"
    outcome = two_ranks("parser", out, 6, PARSER, "--fail-at", "1:2")
    assert outcome.code != 0 and outcome.rank == 1
    assert outcome.message == "rank 1 of 2 failed (exit 1): RuntimeError: injected failure at step 2", outcome
    assert "Traceback" not in capfd.readouterr().err  # rank 0 stops quietly; the launcher reports rank 1
    meta = read_checkpoint(out / "checkpoint.safetensors")[1]  # intact, and the last one written
    assert meta["step"] == 2


def test_cli_runs_two_processes_and_refuses_bad_splits(tmp_path):
    out = tmp_path / "run"
    r = mgpe("train", "parser", "--data", "synthetic:8", "--out", out, "--size", 32, "--base", 4, "--batch", 2,
             "--steps", 2, "--augment", "none", "--device", "cpu", "--nproc", 2)
    assert r.returncode == 0, r.stderr
    assert read_checkpoint(out / "checkpoint.safetensors")[1]["extra"]["world_size"] == 2
    card = json.loads((out / "parser-unet.json").read_text())
    assert card["steps"] == 2 and "--nproc 2" in card["command"]
    r = mgpe("train", "parser", "--data", "synthetic:8", "--out", tmp_path / "odd", "--batch", 3, "--nproc", 2)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: batch 3 does not split over 2 processes: use a multiple of 2"]
    if not torch.cuda.is_available():
        r = mgpe("train", "--config", "tiny", "--data", "synthetic:8", "--out", tmp_path / "g", "--gpus", 2,
                 "--set", "lambda_gp=0")
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [
            "error: --gpus 2: this machine has 0 CUDA GPU(s) (on CPU, --nproc N runs N processes)"]


def test_world_and_shares():
    assert [share(8, World(r, 4)) for r in range(4)] == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)]
    with pytest.raises(UsageError, match="does not split"):
        share(6, World(0, 4))
