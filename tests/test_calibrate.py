"""Parser calibration: per-class logit offsets fitted on labelled pixels and put into the output layer."""
import numpy as np
import torch

from mgpe_toolkit.labels import LABEL_INDEX as L
from mgpe_toolkit.labels import NUM_CLASSES
from mgpe_toolkit.nets.unet import UNet, UNetConfig
from mgpe_toolkit.train.calibrate import fit_offsets, groups, scores, views, with_offsets


def _pixels(n: int = 40000, seed: int = 0, pushed: dict | None = None):
    """Noisy logits of pixels whose classes follow a face-like share (background and skin common, parts rare),
    with `pushed` classes' logits raised everywhere, as a class-weighted loss leaves them."""
    rng = np.random.default_rng(seed)
    share = np.full(NUM_CLASSES, 0.01)
    share[[L["background"], L["skin"], L["hair"]]] = (0.35, 0.3, 0.2)
    truth = rng.choice(NUM_CLASSES, n, p=share / share.sum()).astype(np.uint8)
    logits = rng.normal(0, 1.0, (NUM_CLASSES, n)).astype(np.float32)
    logits[truth, np.arange(n)] += 2.5
    for k, v in (pushed or {}).items():
        logits[k] += v
    return logits, truth


def test_offsets_take_back_what_a_pushed_class_gained():
    pushed = {L["nose"]: 1.5, L["l_eye"]: 1.2, L["r_eye"]: 1.2}
    logits, truth = _pixels(pushed=pushed)
    offsets = fit_offsets(logits, truth)
    before, after = scores(truth, logits.argmax(0)), scores(truth, (logits + offsets[:, None]).argmax(0))
    assert after[0] > before[0] + 0.01 and after[1] > before[1] + 0.01
    rest = np.median(np.delete(offsets, list(pushed)))
    assert -1.9 < offsets[L["nose"]] - rest < -1.0
    assert offsets[L["l_eye"]] == offsets[L["r_eye"]] and offsets[L["l_eye"]] - rest < -0.7
    # On pixels drawn afresh (the same push), the fitted offsets keep their gain: they fit the push, not the draw.
    fresh, fresh_truth = _pixels(seed=1, pushed=pushed)
    assert sum(scores(fresh_truth, (fresh + offsets[:, None]).argmax(0))) > sum(scores(fresh_truth, fresh.argmax(0)))


def test_sides_share_an_offset_and_every_class_is_in_one_group():
    g = groups()
    assert sorted(k for group in g for k in group) == list(range(NUM_CLASSES))
    assert (L["l_brow"], L["r_brow"]) in g and (L["l_ear"], L["r_ear"]) in g and (L["nose"],) in g


def test_offsets_in_the_output_layer_add_to_every_pixels_logits():
    torch.manual_seed(0)
    net = UNet(UNetConfig(base=4, depth=2)).eval()
    offsets = np.linspace(-1, 1, NUM_CLASSES).astype(np.float32)
    shifted = UNet(UNetConfig(base=4, depth=2)).eval()
    shifted.load_state_dict(with_offsets(net.state_dict(), offsets))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        diff = (shifted(x) - net(x))[0]
    assert torch.allclose(diff, torch.from_numpy(offsets)[:, None, None].expand_as(diff), atol=1e-5)


def test_views_are_the_aligned_centre_and_the_whole_context_at_the_parsers_size():
    image = np.zeros((368, 368, 3), np.uint8)
    labels = np.zeros((368, 368), np.uint8)
    image[56:312, 56:312] = 200  # the aligned crop of a 368² context crop (CONTEXT_SIZE, SIZE 256)
    labels[56:312, 56:312] = L["skin"]
    (centre, centre_labels), (wide, wide_labels) = views(image, labels, 256)
    assert centre.shape == (256, 256, 3) and (centre == 200).all() and (centre_labels == L["skin"]).all()
    assert wide.shape == (256, 256, 3) and wide_labels.shape == (256, 256)
    assert abs((wide_labels == L["skin"]).mean() - (256 / 368) ** 2) < 0.01
