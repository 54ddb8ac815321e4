"""The `paper` preset: the authors' structure (sizes at full width), losses with their weights, the two
discriminators, the LR schedule, placement, dilation, the ablations, safetensors and ONNX round trips (narrow)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from mgpe_toolkit.nets.config import PRESETS
from mgpe_toolkit.nets.framework import MaskGuidedFramework
from mgpe_toolkit.nets.inputs import dilate_components
from mgpe_toolkit.data.sets import SyntheticSet
from mgpe_toolkit.train.gan import GANTrainer
from mgpe_toolkit.weights import load_generator, save_generator
from run_cli import mgpe

NARROW = dict(comp_width=8, comp_channels=16, mask_channels=16, gen_channels=16, gen_blocks=1, bg_channels=8,
              latent=32, disc_channels=8, batch=2, lambda_gp=0.0, lambda_vgg=0.0)


def narrow(**extra):
    return replace(PRESETS["paper"], **{**NARROW, **extra})


def test_full_width_sizes_match_the_authors():
    G = MaskGuidedFramework(PRESETS["paper"])
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    inference = sum(p.numel() for n, p in G.named_parameters() if not n.startswith("decoders."))
    assert abs(inference / 163.6e6 - 1) < 0.01, inference
    assert abs(count(G) / 228.2e6 - 1) < 0.01
    assert abs(count(G.encoders["left_eye"]) / 10.1e6 - 1) < 0.01 and abs(count(G.encoders["mouth"]) / 51.0e6 - 1) < 0.01
    assert abs(count(G.generator) / 11.7e6 - 1) < 0.01
    assert len([m for m in G.generator.modules() if type(m).__name__ == "_Res"]) == 9
    del G
    from mgpe_toolkit.nets.discriminator import MultiScaleDiscriminator

    cfg = PRESETS["paper"]
    D = MultiScaleDiscriminator(cfg.disc_channels, cfg.disc_layers, norm=cfg.disc_norm, padding=cfg.disc_padding)
    assert abs(count(D) / 5.56e6 - 1) < 0.01
    # Receptive field 70: one output logit depends on a 70×70 window of the input.
    d = D.scales[0].eval()
    x = torch.zeros(1, 22, 256, 256, requires_grad=True)
    out = d.blocks[-1](torch.nn.Sequential(*d.blocks[:-1])(x))
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum((0, 1, 3)))
    assert rows.max() - rows.min() + 1 == 70


def test_placement_on_the_grid_as_specified():
    from mgpe_toolkit.nets.generator import place_at
    from mgpe_toolkit.nets.paper import paper_offsets

    centres = torch.tensor([[96.0, 116.0], [98.0, 118.0], [2.0, 3.0]])  # (x, y); 118 / 4 + 0.5 = 30
    off = paper_offsets(centres, (8, 12), 64)
    assert off.tolist() == [[18.0, 25.0], [19.0, 26.0], [0.0, 0.0]]  # g = int(c / 4 + 0.5); kept inside the grid
    grid = place_at(torch.ones(3, 1, 8, 12), off, 64)
    ys, xs = torch.nonzero(grid[0, 0], as_tuple=True)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (25, 32, 18, 29)


def test_dilation_grows_eyes_and_mouth_by_a_tenth():
    from mgpe_toolkit.labels import LABEL_INDEX as L

    m = np.full((256, 256), L["skin"], np.uint8)
    m[110:122, 80:112] = L["l_eye"]
    m[175:195, 100:156] = L["u_lip"]
    m[185:195, 100:156] = L["l_lip"]
    out = dilate_components(m, 1.1)
    eye = out == L["l_eye"]
    assert eye[110:122, 80:112].all() and 1.15 < eye.sum() / (12 * 32) < 1.4  # 1.1² plus whole pixels
    assert ((out == L["u_lip"]) | (out == L["l_lip"])).sum() > 1.15 * 20 * 56
    assert (out[out != m] != L["skin"]).all()  # only skin gave way, to the grown parts
    assert (dilate_components(m, 1.0) == m).all()


def test_lr_constant_then_linear_to_zero_in_epochs():
    t = GANTrainer(SyntheticSet(8, 256), "/tmp/unused", narrow(lr=2e-4), parser_weights=None, device="cpu")
    assert t.steps_per_epoch == 4  # 8 faces, batch 2
    assert [t.lr_at(s) for s in (0, 40)] == [2e-4, 2e-4]
    assert t.lr_at(40 + 90) == pytest.approx(1e-4) and t.lr_at(40 + 180) == 0 and t.lr_at(10**6) == 0
    t.step = 130
    t.train_step()
    assert t.opt_g.param_groups[0]["lr"] == pytest.approx(1e-4) == t.opt_d.param_groups[0]["lr"]
    tiny = replace(PRESETS["tiny"], lambda_gp=0.0)
    lean = GANTrainer(SyntheticSet(8, 64), "/tmp/unused", tiny, parser_weights=None, device="cpu")
    assert lean.lr_at(10**6) == tiny.lr  # lr_decay 0: constant


@pytest.fixture
def vgg_file(tmp_path):
    from safetensors.torch import save_file

    from mgpe_toolkit.nets.vgg import VGG19Features

    torch.manual_seed(0)
    path = tmp_path / "vgg19.safetensors"
    save_file({k: v.contiguous() for k, v in VGG19Features().state_dict().items()}, str(path))
    return path


@pytest.fixture
def parser64(tmp_path):
    from mgpe_toolkit.nets.unet import UNet, UNetConfig
    from mgpe_toolkit.weights import save_unet

    torch.manual_seed(0)
    return save_unet(UNet(UNetConfig(base=4)).eval(), tmp_path / "p.safetensors", step=0,
                                 config={"size": 64})


def test_every_loss_term_with_its_weight_and_the_right_discriminators(tmp_path, vgg_file, parser64):
    cfg = narrow(lambda_gp=100.0, lambda_vgg=30.0)
    t = GANTrainer(SyntheticSet(2, 256), tmp_path, cfg, parser_weights=parser64, device="cpu")
    assert "VGG19 from" in t.use_perceptual(vgg_file)
    seen = {"D": [], "D2": []}
    t.D.register_forward_hook(lambda m, a, o: seen["D"].append(a[0].detach().clone()))
    t.D2.register_forward_hook(lambda m, a, o: seen["D2"].append(a[0].detach().clone()))
    losses = t.train_step()
    for k in ("local", "global", "vgg", "sigmoid", "fm", "gp", "d"):
        assert losses[k] > 0, k
    expected = sum(getattr(cfg, f"lambda_{w}") * losses[k] for k, w in
                   (("local", "local"), ("global", "global"), ("vgg", "vgg"), ("sigmoid", "gd"), ("fm", "fm"),
                    ("gp", "gp")))
    assert losses["total"] == pytest.approx(expected, rel=1e-4)
    b, paired = t.last
    assert len(seen["D"]) == 4 and len(seen["D2"]) == 3  # D: real, fake (D step), fake + real (G step)
    assert any(torch.allclose(x, paired) for x in seen["D"])
    fakes_d2 = [x for x in seen["D2"] if not torch.equal(x, b.target_image)]
    assert len(fakes_d2) == 2 and torch.equal(fakes_d2[0], fakes_d2[1])  # one result, judged in D's and G's step
    assert not torch.allclose(fakes_d2[0], paired)  # D2 judges only the unpaired result


def test_losses_fall_on_a_two_image_overfit(tmp_path):
    cfg = narrow(lr=1e-3, lr_unit="steps", lr_decay=0.0)
    t = GANTrainer(SyntheticSet(2, 256), tmp_path, cfg, parser_weights=None, device="cpu")
    hist = [t.train_step() for _ in range(16)]
    for k in ("local", "global"):
        first, last = np.mean([h[k] for h in hist[:3]]), np.mean([h[k] for h in hist[-3:]])
        assert last < 0.8 * first, (k, first, last)


def test_feature_matching_reads_d_after_its_step(tmp_path):
    """Real features for L_FM come from the discriminator after its update, like the fake ones (every preset)."""
    for cfg, size in ((narrow(), 256), (replace(PRESETS["tiny"], lambda_gp=0.0, batch=2), 64)):
        t = GANTrainer(SyntheticSet(2, size), tmp_path / str(size), cfg, parser_weights=None, device="cpu")
        events = []
        step = t.opt_d.step
        t.opt_d.step = lambda *a, **k: (events.append("D updated"), step(*a, **k))[1]
        t.D.register_forward_hook(lambda m, a, o: events.append("real" if torch.equal(a[0], b_real[0]) else "fake"))
        b_real = [None]
        receive = t.receive
        t.receive = lambda item: (lambda b: (b_real.__setitem__(0, b.target_image), b)[1])(receive(item))
        t.train_step()  # step 0: paired
        assert events.index("D updated") < len(events) - 1 - events[::-1].index("real")


def test_ablations_and_round_trips(tmp_path):
    from mgpe_toolkit.data.synthetic import synthetic_portrait
    from mgpe_toolkit.export.onnx import export_onnx, parity
    from mgpe_toolkit.nets.framework import onehot
    from mgpe_toolkit.nets.inputs import centres_of, component_crops, foreground_region

    p = synthetic_portrait(3, 256)
    x = torch.from_numpy(p.image).permute(2, 0, 1)[None].float() / 127.5 - 1
    m = torch.from_numpy(dilate_components(p.mask, 1.1))[None]
    c = centres_of(m.numpy())
    args = (onehot(m), torch.from_numpy(c), x, foreground_region(m))
    torch.manual_seed(0)
    pasted = MaskGuidedFramework(narrow(fusion="paste")).eval()
    with torch.no_grad():
        out, fg = pasted(component_crops(x, m, c, masked_mouth=True), *args)
    keep = foreground_region(m) == 0
    assert torch.equal(out[keep.expand_as(out)], x[keep.expand_as(x)])  # setting 2: the background is pasted
    assert tuple(MaskGuidedFramework(narrow(embedding="global", fusion="paste")).encoders) == ("face",)

    G = MaskGuidedFramework(narrow()).eval()
    assert fg.shape[1] == G.foreground_channels == 8  # G_m gives a feature map, not RGB
    w = save_generator(G, tmp_path / "w.safetensors", step=3)
    G2 = load_generator(w)
    crops = component_crops(x, m, c, masked_mouth=True)
    with torch.no_grad():
        assert torch.equal(G(crops, *args)[0], G2(crops, *args)[0])
    card = json.loads(w.with_suffix(".json").read_text())
    assert card["config"]["arch"] == "paper"
    manifest = export_onnx(w, tmp_path / "exports")
    assert max(parity(w, manifest).values()) <= 1e-4


def test_cli_trains_the_paper_preset_and_says_the_perceptual_loss_is_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-hub"))
    sets = [x for k, v in {**NARROW, "lambda_vgg": 30.0}.items() for x in ("--set", f"{k}={v}")]
    r = mgpe("train", "--config", "paper", "--data", "synthetic:2", "--steps", "2", "--out", tmp_path / "run",
             "--device", "cpu", *sets)
    assert r.returncode == 0, r.stderr
    assert "perceptual loss: off: no VGG19 weights here" in r.stderr.replace("\n", " ")
    card = json.loads((tmp_path / "run" / "mgpe-gan.json").read_text())
    assert card["perceptual"].startswith("off") and card["config"]["arch"] == "paper" and card["steps"] == 2


def test_resume_is_exact_and_batch_runs_the_paper_arch(tmp_path, astronaut):
    from mgpe_toolkit.io import read_image, write_image

    sets = [x for k, v in {**NARROW, "checkpoint_every": 2}.items() for x in ("--set", f"{k}={v}")]
    base = ["train", "--config", "paper", "--data", "synthetic:4", "--device", "cpu", *sets]
    assert mgpe(*base, "--steps", "2", "--out", tmp_path / "a").returncode == 0
    r = mgpe(*base, "--steps", "4", "--out", tmp_path / "a", "--resume")
    assert r.returncode == 0 and "resumed" in r.stderr, r.stderr
    assert mgpe(*base, "--steps", "4", "--out", tmp_path / "b").returncode == 0
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "a" / "mgpe-gan.safetensors")), load_file(str(tmp_path / "b" / "mgpe-gan.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    write_image(tmp_path / "raw" / "astro.png", astronaut)
    r = mgpe("batch", tmp_path / "raw", tmp_path / "out", "-m", "hair=skin", "--backend", "torch", "--weights",
             tmp_path / "b" / "mgpe-gan.safetensors", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert read_image(tmp_path / "out" / "astro.png").shape == astronaut.shape
