"""Training the U-Net parser: it learns, resumes exactly, survives bad samples, and its weights parse."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mgpe_toolkit.errors import InputError
from mgpe_toolkit.io import write_image, write_mask
from mgpe_toolkit.data.sets import PairFolder, SyntheticSet, flip_sample
from mgpe_toolkit.train.parser import ParserTrainConfig, ParserTrainer, run_training

TINY = dict(size=64, base=8, batch=8)


def test_parser_learns_synthetic_portraits(tmp_path):
    trainer = ParserTrainer(SyntheticSet(200, 64), tmp_path, ParserTrainConfig(**TINY, checkpoint_every=1000))
    held_out = SyntheticSet(16, 64, seed=50_000)
    before = trainer.evaluate(held_out)
    losses = run_training(trainer, 150, data_description="test")
    after = trainer.evaluate(held_out)
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])
    assert before < 0.4 and after > 0.8, (before, after)
    # Rare small parts weigh more than background, skin and hair.
    from mgpe_toolkit.labels import LABEL_INDEX as L
    w = trainer.weights
    assert w[L["l_eye"]] > 2 * w[L["background"]] and w[L["u_lip"]] > 2 * w[L["skin"]]


def test_resume_continues_exactly(tmp_path):
    cfg = ParserTrainConfig(**TINY, checkpoint_every=5)
    straight = ParserTrainer(SyntheticSet(50, 64), tmp_path / "a", cfg)
    run_training(straight, 12, data_description="")
    first = ParserTrainer(SyntheticSet(50, 64), tmp_path / "b", cfg)
    run_training(first, 5, data_description="")
    resumed = ParserTrainer(SyntheticSet(50, 64), tmp_path / "b", cfg)
    assert resumed.resume() and resumed.step == 5
    run_training(resumed, 12, data_description="")
    for (k, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))


def test_bf16_autocast_and_channels_last_train_like_fp32_and_resume_exactly(tmp_path):
    """bf16 autocast and channels_last (a CUDA run's defaults), here on the CPU: the same loss within bf16's
    precision, a falling loss, and an exact resume with the moments laid out as the parameters (fused Adam on
    CUDA has refused a mismatch: pytorch/pytorch#106951); the weights on disk load as usual."""
    cfg = ParserTrainConfig(**TINY, checkpoint_every=4)
    plain = ParserTrainer(SyntheticSet(50, 64), tmp_path / "fp32", cfg, device="cpu")
    fast = ParserTrainer(SyntheticSet(50, 64), tmp_path / "bf16", cfg, device="cpu", amp=True, channels_last=True)
    assert (plain.amp, plain.channels_last) == (False, False) and (fast.amp, fast.channels_last) == (True, True)
    conv = next(m.weight for m in fast.model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    a, b = plain.train_step(), fast.train_step()
    assert 1e-5 * a < abs(a - b) < 0.02 * a, (a, b)  # bf16 indeed (2e-4 apart here), and close
    losses = run_training(fast, 40, data_description="")
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses

    straight = ParserTrainer(SyntheticSet(50, 64), tmp_path / "a", cfg, device="cpu", channels_last=True)
    run_training(straight, 7, data_description="")
    first = ParserTrainer(SyntheticSet(50, 64), tmp_path / "b", cfg, device="cpu", channels_last=True)
    run_training(first, 4, data_description="")
    resumed = ParserTrainer(SyntheticSet(50, 64), tmp_path / "b", cfg, device="cpu", channels_last=True)
    assert resumed.resume() and resumed.step == 4
    for p in resumed.model.parameters():
        for value in resumed.opt.state[p].values():
            assert value.shape != p.shape or value.stride() == p.stride()
    run_training(resumed, 7, data_description="")
    for (k, x), (_, y) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(x, y), k
    from mgpe_toolkit.weights import load_unet

    net, _ = load_unet(tmp_path / "b" / "parser-unet.safetensors", "cpu")
    for (k, x), (_, y) in zip(net.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(x, y), k


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    cfg = ParserTrainConfig(**TINY)
    (tmp_path / "checkpoint.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    trainer = ParserTrainer(SyntheticSet(20, 64), tmp_path, cfg)
    with pytest.raises(InputError, match="checkpoint.safetensors: not a readable safetensors file"):
        trainer.resume()


def test_bad_samples_are_skipped_with_a_warning(tmp_path):
    for i in range(3):
        p = SyntheticSet(3, 64).load(i)
        write_image(tmp_path / "images" / f"{i}.png", p.image)
        write_mask(tmp_path / "masks" / f"{i}.png", p.mask)
    (tmp_path / "images" / "1.png").write_bytes(b"broken")
    warnings = []
    trainer = ParserTrainer(PairFolder(tmp_path / "images", tmp_path / "masks"), tmp_path / "run",
                            ParserTrainConfig(**{**TINY, "batch": 4}), warn=warnings.append)
    run_training(trainer, 3, data_description="")
    assert trainer.step == 3 and len(warnings) == 1 and "1.png" in warnings[0]
    # Worker processes meet the bad file too; the run still reports it once.
    warnings.clear()
    trainer = ParserTrainer(PairFolder(tmp_path / "images", tmp_path / "masks"), tmp_path / "run2",
                            ParserTrainConfig(**{**TINY, "batch": 4}), warn=warnings.append)
    run_training(trainer, 6, data_description="", workers=2)
    assert trainer.step == 6 and len(warnings) == 1 and "1.png" in warnings[0]


def test_worker_processes_give_the_same_training(tmp_path):
    cfg = ParserTrainConfig(**{**TINY, "batch": 4})
    runs = []
    for workers in (0, 2):
        trainer = ParserTrainer(SyntheticSet(20, 64), tmp_path / str(workers), cfg, device="cpu")
        runs.append(run_training(trainer, 5, data_description="", workers=workers))
    assert runs[0] == runs[1] and len(runs[0]) == 5


def test_flip_swaps_sides():
    from mgpe_toolkit.labels import LABEL_INDEX as L

    p = SyntheticSet(1, 64).load(0)
    img, m = flip_sample(p.image, p.mask)
    assert np.array_equal(img, p.image[:, ::-1])
    ys, xs = np.nonzero(m == L["l_eye"])
    ys2, xs2 = np.nonzero(m == L["r_eye"])
    assert xs.mean() < xs2.mean()


def test_cli_trains_and_the_unet_parser_uses_the_weights(tmp_path, astronaut):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "mgpe_toolkit", "train", "parser", "--data", "synthetic:64", "--out", str(run),
           "--steps", "20", "--size", "64", "--base", "8", "--checkpoint-every", "10"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    card = json.loads((run / "parser-unet.json").read_text())
    assert card["steps"] == 20 and card["command"].startswith("mgpe train parser --data synthetic:64")
    assert card["precision"] == "fp32"  # --precision auto on a CPU
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr
    from mgpe_toolkit.stages.parse_unet import UNetParser

    mask = UNetParser(run / "parser-unet.safetensors").parse(astronaut[:256, 100:356]).labels
    assert mask.shape == (256, 256) and mask.dtype == np.uint8 and mask.max() < 19
    # Through the registry and the CLI, found by MGPE_MODELS.
    env = {**__import__("os").environ, "MGPE_MODELS": str(run)}
    write_image(tmp_path / "face.png", astronaut[:256, 100:356])
    proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "parse", str(tmp_path / "face.png"),
                           str(tmp_path / "masks"), "--parser", "unet", "--coords", "aligned"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "masks" / "face.png").is_file()


def test_precision_option_trains_in_bf16_on_request_and_refuses_unknown_values(tmp_path):
    base = [sys.executable, "-m", "mgpe_toolkit", "train", "parser", "--data", "synthetic:16", "--steps", "3",
            "--size", "64", "--base", "8", "--batch", "4", "--device", "cpu"]
    proc = subprocess.run(base + ["--out", str(tmp_path / "bf16"), "--precision", "bf16"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "(bf16 autocast)" in proc.stderr
    card = json.loads((tmp_path / "bf16" / "parser-unet.json").read_text())
    assert card["precision"] == "bf16 autocast" and card["steps"] == 3
    losses = [json.loads(line)["loss/parser_ce"] for line in (tmp_path / "bf16" / "metrics.jsonl").open()]
    assert len(losses) == 3 and all(np.isfinite(losses))
    for cmd in (base + ["--out", str(tmp_path / "fp16")],
                [sys.executable, "-m", "mgpe_toolkit", "train", "--config", "tiny", "--data", "synthetic:4", "--out",
                 str(tmp_path / "fp16")]):
        proc = subprocess.run(cmd + ["--precision", "fp16"], capture_output=True, text=True)
        assert proc.returncode == 2 and "--precision 'fp16': expected auto, bf16 or fp32" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "fp16").exists()


def test_unet_plugin_says_why_it_is_unusable_without_weights(monkeypatch, tmp_path):
    from mgpe_toolkit.stages import parse_unet
    from mgpe_toolkit.weights import load_unet

    monkeypatch.setattr("mgpe_toolkit.weights.REPO_MODELS", tmp_path)
    monkeypatch.delenv("MGPE_MODELS", raising=False)
    assert "train one with `mgpe train parser`" in parse_unet.weights_problem()
    with pytest.raises(InputError, match="not U-Net parser weights|not a readable"):
        (tmp_path / "x.safetensors").write_bytes(b"junk")
        load_unet(tmp_path / "x.safetensors")


def test_run_log_writes_jsonl_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from mgpe_toolkit.train.loop import RunLog

    log = RunLog(tmp_path)
    log.scalars(1, {"loss/x": 2.0})
    log.images(1, "grid", torch.rand(3, 8, 8))
    log.close()
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"step": 1, "loss/x": 2.0}
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 100


def test_helen_folder_loads_with_converted_labels(helen_dir):
    from mgpe_toolkit.labels import LABEL_INDEX as L
    from mgpe_toolkit.data.sets import open_dataset

    ds = open_dataset(str(helen_dir), labels="helen")
    assert len(ds) == 14
    s = ds.load(0)
    assert s.image.shape[:2] == s.mask.shape
    present = set(np.unique(s.mask).tolist())
    assert {L["hair"], L["u_lip"], L["l_lip"], L["nose"], L["skin"]} <= present and max(present) < 19


def test_data_specs_that_name_nothing_are_usage_errors(tmp_path):
    from mgpe_toolkit.errors import UsageError
    from mgpe_toolkit.data.sets import open_dataset

    for spec, reason in (("synthetic:0", "at least 1"), ("synthetic:-5", "at least 1"), ("synthetic:x", "a number"),
                         ("synthetic", "synthetic:N"), (str(tmp_path / "none"), "no such folder")):
        with pytest.raises(UsageError, match=reason):
            open_dataset(spec)


def test_training_settings_are_checked_before_any_work():
    from mgpe_toolkit.errors import UsageError
    from mgpe_toolkit.nets.config import load_config

    for key, value in (("batch", 0), ("lr", -1.0), ("checkpoint_every", 0), ("lambda_gp", -1.0)):
        with pytest.raises(UsageError, match=key):
            load_config("tiny", **{key: value})
    for kwargs in ({"size": 8192}, {"batch": 0}, {"checkpoint_every": 0}, {"lr": -1.0}):
        with pytest.raises(UsageError):
            ParserTrainConfig(**kwargs)
    proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "train", "--config", "tiny", "--data", "synthetic:4",
                           "--out", "/nonexistent/run", "--set", "checkpoint_every=0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "checkpoint_every=0 must be at least 1" in proc.stderr


def test_resume_refuses_other_data_or_settings_with_a_readable_message(tmp_path):
    def train(*args):
        cmd = [sys.executable, "-m", "mgpe_toolkit", "train", "parser", "--out", str(tmp_path / "run"), "--size", "32",
               "--batch", "2", "--augment", "none", *args]
        return subprocess.run(cmd, capture_output=True, text=True)

    first = train("--base", "4", "--data", "synthetic:6", "--steps", "2")
    assert first.returncode == 0, first.stderr
    other = train("--base", "4", "--data", "synthetic:7", "--steps", "4", "--resume")
    assert other.returncode == 2 and "was trained on synthetic portraits: 6" in other.stderr, other.stderr
    assert "same --data" in other.stderr and "Traceback" not in other.stderr
    wider = train("--base", "8", "--data", "synthetic:6", "--steps", "4", "--resume")
    assert wider.returncode == 2 and "base 4 → 8" in wider.stderr, wider.stderr
    same = train("--base", "4", "--data", "synthetic:6", "--steps", "4", "--resume")
    assert same.returncode == 0 and "resumed" in same.stderr, same.stderr


def test_a_stopped_run_leaves_weights_that_say_so(tmp_path):
    cfg = ParserTrainConfig(**TINY, checkpoint_every=3)
    trainer = ParserTrainer(SyntheticSet(20, 64), tmp_path, cfg)
    batches = trainer.batches
    stop_at = 4

    def flaky(step):  # the machine goes away during step 4
        if step == stop_at:
            raise KeyboardInterrupt
        return batches(step)

    trainer.batches = flaky
    with pytest.raises(KeyboardInterrupt):
        run_training(trainer, 10, data_description="test", workers=0)
    card = json.loads((tmp_path / "parser-unet.json").read_text())
    assert card["steps"] == 3 and card["target_steps"] == 10 and card["finished"] is False
    trainer.batches = batches
    run_training(trainer, 10, data_description="test", workers=0)
    card = json.loads((tmp_path / "parser-unet.json").read_text())
    assert card["steps"] == 10 and card["finished"] is True


def test_a_widened_unet_computes_the_same_masks_and_its_copies_learn_apart():
    from mgpe_toolkit.nets.unet import UNet, UNetConfig, widened

    torch.manual_seed(0)
    net = UNet(UNetConfig(base=4, depth=3)).train()
    for _ in range(3):  # running statistics of its own, not the initial ones
        net(torch.randn(4, 3, 32, 32))
    x = torch.randn(2, 3, 32, 32)
    for mode in (False, True):  # eval: running statistics; train: the batch's
        net.train(mode)
        wide = widened(net, 6)
        assert wide.config.base == 6 and wide.training == mode
        assert sum(p.numel() for p in wide.parameters()) > 2 * sum(p.numel() for p in net.parameters())
        with torch.no_grad():
            assert torch.allclose(wide(x), net(x), atol=1e-5)
    # A new channel starts as a copy of an old one; one step of training sets them apart.
    w = wide.stem[1][0].weight
    rows = {i: int(torch.nonzero((w[:4] == w[i]).all(dim=(1, 2, 3)))[0]) for i in range(4, 6)}
    wide.zero_grad()
    wide(x).square().mean().backward()
    with torch.no_grad():
        for i, j in rows.items():
            assert not torch.allclose(w.grad[i], w.grad[j])
    with pytest.raises(ValueError):
        widened(net, 2)
