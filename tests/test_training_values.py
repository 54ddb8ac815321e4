"""Training values a careless user types are refused up front; a run that diverges stops at its first non-finite
loss with its last good checkpoint intact; non-finite weights are never written and never loaded (issue 38)."""
import hashlib

import pytest
import torch

from mgpe_toolkit.errors import DivergedError, InputError, UsageError
from mgpe_toolkit.nets.config import GANConfig
from mgpe_toolkit.data.sets import SyntheticSet
from mgpe_toolkit.train.parser import CHECKPOINT, WEIGHTS, ParserTrainConfig, ParserTrainer, run_training
from run_cli import mgpe


@pytest.mark.parametrize("args, said", [
    (("train", "parser", "--seed", "-1"), "--seed"),
    (("train", "parser", "--lr", "1e309"), "lr inf"),
    (("train", "parser", "--lr", "nan"), "lr nan"),
    (("train", "parser", "--base", "100000"), "base 100000"),
    (("train", "parser", "--batch", "100000"), "batch 100000"),
    (("train", "--set", "seed=-3"), "seed=-3"),
    (("train", "--set", "lr=1e309"), "lr=inf"),
    (("train", "--set", "batch=100000"), "batch"),
    (("train", "--set", "gen_channels=1000000"), "gen_channels"),
    (("train", "--set", "lambda_gp=inf"), "lambda_gp"),
    (("augment", "m", "--sources", "s", "--seed", "-1"), "--seed"),
])
def test_bad_training_values_are_refused_in_one_line(tmp_path, args, said):
    extra = ("--data", "synthetic:4", "--out", tmp_path / "run", "--steps", "1") if args[0] == "train" else ()
    if args[:2] == ("train", "parser"):
        extra += ("--size", "64")
    proc = mgpe(*args, *extra)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and said in text and "Traceback" not in text, text
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.safetensors"))


def test_configs_refuse_what_the_cli_refuses():
    for bad in (dict(seed=-1), dict(lr=float("inf")), dict(base=100000), dict(batch=100000),
                dict(weight_power=float("nan"))):
        with pytest.raises(UsageError):
            ParserTrainConfig(**bad)
    for bad in (dict(seed=-1), dict(lr=float("nan")), dict(batch=100000), dict(lambda_local=float("inf"))):
        with pytest.raises(UsageError):
            GANConfig.from_dict({**GANConfig().to_dict(), **bad})


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_diverged_run_stops_at_its_first_non_finite_loss_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = ParserTrainConfig(size=64, base=4, batch=2, checkpoint_every=2)
    trainer = ParserTrainer(SyntheticSet(8, 64), tmp_path, cfg)
    run_training(trainer, 2, data_description="t")
    kept = {name: _digest(tmp_path / name) for name in (CHECKPOINT, WEIGHTS)}
    with torch.no_grad():
        trainer.model.head.weight.fill_(float("nan"))  # what a learning rate of 1e309 does after one step
    with pytest.raises(DivergedError, match="step 3: loss parser_ce is nan"):
        run_training(trainer, 6, data_description="t")
    assert {name: _digest(tmp_path / name) for name in kept} == kept
    # Saving such weights is refused too, and the files stay as they were.
    with pytest.raises(DivergedError, match="weight holds NaN or inf"):
        trainer.save("t")
    assert {name: _digest(tmp_path / name) for name in kept} == kept
    resumed = ParserTrainer(SyntheticSet(8, 64), tmp_path, cfg)
    assert resumed.resume() and resumed.step == 2


def test_non_finite_weights_are_refused_on_load(tmp_path, astronaut):
    from safetensors.torch import load_file, save_file

    from mgpe_toolkit.io import write_image
    from mgpe_toolkit.weights import shipped_parser
    from mgpe_toolkit.weights import read_safetensors

    src = shipped_parser()
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(src))
    state["head.bias"] = torch.full_like(state["head.bias"], float("inf"))
    bad = tmp_path / "parser-unet.safetensors"
    save_file(state, str(bad), metadata=meta)
    with pytest.raises(InputError, match="head.bias holds NaN or inf"):
        read_safetensors(bad, "unet")
    write_image(tmp_path / "a.png", astronaut)
    proc = mgpe("parse", tmp_path / "a.png", tmp_path / "masks", "--parser", "unet", "--parser-weights", bad)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "NaN or inf" in text and "Traceback" not in text, text
