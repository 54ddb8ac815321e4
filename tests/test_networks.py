"""The paper's networks: shapes at 256², placement of component features, the VAE head, the cost budget."""
import numpy as np
import pytest
import torch

from mgpe_toolkit.data.synthetic import synthetic_portrait
from mgpe_toolkit.labels import COMPONENTS, crop_box
from mgpe_toolkit.nets.config import PRESETS, load_config
from mgpe_toolkit.nets.framework import MaskGuidedFramework, onehot
from mgpe_toolkit.nets.inputs import PLACED, centres_of, component_crops, foreground_region
from mgpe_toolkit.nets.generator import place


def inputs(resolution, seeds=(0,)):
    ps = [synthetic_portrait(s, resolution) for s in seeds]
    img = torch.from_numpy(np.stack([p.image for p in ps])).permute(0, 3, 1, 2).float() / 127.5 - 1
    masks = torch.from_numpy(np.stack([p.mask for p in ps]))
    cen = centres_of(masks.numpy())
    return img, masks, cen


@pytest.mark.parametrize("centre", [(96.0, 116.0), (3.0, 250.0), (255.0, 0.0)])
def test_placement_lands_at_the_target_centre_clipped_inside(centre):
    w, h = COMPONENTS["left_eye"].crop_size(256)  # 48×32 -> a 12×8 feature on the 64² grid
    feat = torch.arange(12 * 8, dtype=torch.float32).reshape(1, 1, 8, 12) + 1
    out = place(feat, torch.tensor([centre]), (w, h), 256)
    assert out.shape == (1, 1, 64, 64)
    x0, y0, x1, y1 = crop_box(centre, (w, h), (256, 256))
    gx, gy = x0 // 4, y0 // 4
    assert torch.equal(out[0, 0, gy:gy + 8, gx:gx + 12], feat[0, 0])
    assert out.sum() == feat.sum()  # nothing else written, nothing lost at the borders


def test_placement_follows_each_samples_own_centre():
    feat = torch.ones(2, 3, 5, 9)
    out = place(feat, torch.tensor([[60.0, 60.0], [200.0, 190.0]]), (36, 20), 128)
    assert out.shape == (2, 3, 32, 32)
    ys0, xs0 = torch.nonzero(out[0, 0], as_tuple=True)
    ys1, xs1 = torch.nonzero(out[1, 0], as_tuple=True)
    assert xs0.float().mean() < xs1.float().mean() and ys0.float().mean() < ys1.float().mean()


@pytest.mark.parametrize("paired", [True, False])
def test_lean_config_forward_backward_at_256(paired, tmp_path):
    cfg = PRESETS["lean"]
    G = MaskGuidedFramework(cfg)
    xs, ms, cs = inputs(256, (1,))
    xt, mt, ct = (xs, ms, cs) if paired else inputs(256, (2,))
    crops = component_crops(xs, ms, cs)
    assert crops["left_eye"].shape == (1, 3, 32, 48) and crops["mouth"].shape == (1, 3, 80, 144)
    assert crops["hair"].shape == (1, 3, 256, 256)
    out, fg = G(crops, onehot(mt), torch.from_numpy(ct), xt, foreground_region(mt))
    assert out.shape == fg.shape == (1, 3, 256, 256) and out.abs().max() <= 1
    loss = out.mean() + fg.mean()
    loss.backward()
    grads = {n: p.grad is not None and p.grad.abs().sum() > 0 for n, p in G.named_parameters()
             if not n.startswith("decoders")}
    assert all(grads.values()), [n for n, ok in grads.items() if not ok][:5]


def test_component_features_steer_the_result_where_they_are_placed():
    """Changing the left-eye crop changes the output mostly around the target's left eye."""
    torch.manual_seed(0)
    G = MaskGuidedFramework(PRESETS["tiny"]).eval()
    x, m, c = inputs(64, (3,))
    crops = component_crops(x, m, c)
    args = (onehot(m), torch.from_numpy(c), x, foreground_region(m))
    with torch.no_grad():
        a, _ = G(crops, *args)
        crops2 = dict(crops, left_eye=-crops["left_eye"])
        b, _ = G(crops2, *args)
    diff = (a - b).abs().sum(1)[0]
    ex, ey = c[0, 0]
    near = diff[max(0, int(ey) - 8):int(ey) + 8, max(0, int(ex) - 10):int(ex) + 10].mean()
    far = diff[:, 48:].mean()
    assert near > 3 * far


def test_vae_head_samples_around_the_mean():
    from mgpe_toolkit.nets.local import ComponentEncoder, kl_divergence

    enc = ComponentEncoder(8, 8, vae=True)
    mu, logvar = enc(torch.randn(2, 3, 32, 48))
    assert mu.shape == logvar.shape == (2, 8, 8, 12)
    g = torch.Generator().manual_seed(0)
    s1, s2 = ComponentEncoder.sample(mu, logvar, g), ComponentEncoder.sample(mu, logvar, g)
    assert not torch.equal(s1, s2) and kl_divergence(mu, logvar) >= 0
    assert ComponentEncoder.sample(mu, None) is mu


def test_inference_cost_budget_of_the_lean_config():
    """Issue budget: <= 64 GFLOPs per edited 256² image (encoders + E_m + G_m + E_b + G_b)."""
    from torch.utils.flop_counter import FlopCounterMode

    G = MaskGuidedFramework(PRESETS["lean"]).eval()
    x, m, c = inputs(256)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G(component_crops(x, m, c), onehot(m), torch.from_numpy(c), x, foreground_region(m))
    gflops = counter.get_total_flops() / 1e9
    assert 10 < gflops <= 64, gflops


def test_configs_scale_crops_and_reject_bad_values(tmp_path):
    assert [COMPONENTS[n].crop_size(128) for n in PLACED] == [(24, 16), (24, 16), (72, 40)]
    (tmp_path / "c.json").write_text('{"base": "tiny", "batch": 2, "lambda_gp": 0}')
    cfg = load_config(str(tmp_path / "c.json"))
    assert cfg.resolution == 64 and cfg.batch == 2 and cfg.lambda_gp == 0.0
    from mgpe_toolkit.errors import UsageError

    with pytest.raises(UsageError, match="unknown config key"):
        load_config("tiny", colour=3)
    with pytest.raises(UsageError, match="multiple of 32"):
        load_config("tiny", resolution=100)


def test_inputs_are_the_same_from_numpy_and_from_torch():
    """The ONNX path builds the networks' inputs with numpy, training with torch tensors: same crops, same
    regions; and the numpy path never imports torch (checked in a fresh interpreter)."""
    import subprocess
    import sys

    from mgpe_toolkit.nets.inputs import component_region

    samples = [synthetic_portrait(seed, 64) for seed in (1, 2)]
    masks = np.stack([s.mask for s in samples])
    images = np.stack([s.image for s in samples]).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
    centres = centres_of(masks)
    for mouth in (False, True):
        a = component_crops(images, masks, centres, masked_mouth=mouth, face=True)
        b = component_crops(torch.from_numpy(images), torch.from_numpy(masks), centres, masked_mouth=mouth, face=True)
        assert a.keys() == b.keys()
        for name in a:
            assert isinstance(a[name], np.ndarray) and a[name].shape == tuple(b[name].shape)
            np.testing.assert_array_equal(a[name], b[name].numpy())
        masked = a["mouth"] == 0
        assert masked.mean() > (0.3 if mouth else -1) and a["hair"].any() and (a["hair"] == 0).any()
    np.testing.assert_array_equal(foreground_region(masks), foreground_region(torch.from_numpy(masks)).numpy())
    np.testing.assert_array_equal(component_region(masks, "hair"),
                                  component_region(torch.from_numpy(masks), "hair").numpy())
    code = ("import sys, numpy as np; from mgpe_toolkit.nets.inputs import edit_inputs; "
            "m = np.zeros((64, 64), np.uint8); m[20:40, 20:40] = 1; "
            "edit_inputs([np.zeros((64, 64, 3), np.uint8)], [m], [m], 64, masked_mouth=True, dilate=1.1); "
            "print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
