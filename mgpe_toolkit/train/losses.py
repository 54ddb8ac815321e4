"""The training losses, as functions of tensors and networks: the paper's (Eq. 1-9, `lean` and `paper` forms)
and the parser's partially labelled cross-entropy. The trainers hold the networks and weigh the terms."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nets.inputs import COMPONENT_NAMES, component_region
from . import ddp


def bce(outputs, real: bool):
    """BCE with logits on every scale's patch logits, summed over scales."""
    return sum(F.binary_cross_entropy_with_logits(o[-1], (o[-1].new_ones if real else o[-1].new_zeros)(o[-1].shape))
               for o in outputs)


def local(decoders, feats: dict, source_crops: dict, source_masks, form: str):
    """L_local (Eq. 1): each component's reconstruction by its image decoder. lean: ½·MSE; paper: MSE, with
    skin, hair and mouth masked by the component first (the weight, 5000, is lambda_local)."""
    if form == "lean":
        return sum(0.5 * F.mse_loss(decoders[n](f), source_crops[n]) for n, f in feats.items())
    total = 0
    for n, f in feats.items():
        out, crop = decoders[n](f), source_crops[n]
        if n in ("skin", "hair", "face"):
            region = (crop != 0).any(1, keepdim=True).float() if n == "face" else component_region(source_masks, n)
            out = out * region
        elif n == "mouth":
            out = out * (crop != 0).any(1, keepdim=True).float()  # the crop was masked to the mouth's labels
        total = total + F.mse_loss(out, crop)
    return total


def global_(fake, source_image, target_masks, form: str):
    """L_global (Eq. 2), paired. lean: ½·MSE; paper: MSE of the image plus MSE inside each component (eyes and
    mouth with the image's weight, skin and hair half of it) (the weight, 40, is lambda_global)."""
    if form == "lean":
        return 0.5 * F.mse_loss(fake, source_image)
    out = F.mse_loss(fake, source_image)
    for n in COMPONENT_NAMES:
        r = component_region(target_masks, n)
        out = out + (0.5 if n in ("skin", "hair") else 1.0) * F.mse_loss(fake * r, source_image * r)
    return out


def feature_matching(d_fake, d_real, form: str, all_layers: bool = False):
    """L_FM (Eq. 5): lean: ½·MSE on the last layer (or all with all_layers); paper: L1 on the penultimate
    (512-channel) features, per scale."""
    if form == "paper":
        return sum(F.l1_loss(f[-2], r[-2]) for f, r in zip(d_fake, d_real))
    layers = slice(None) if all_layers else slice(-1, None)
    return sum(0.5 * F.mse_loss(f, r) for fs, rs in zip(d_fake, d_real) for f, r in zip(fs[layers], rs[layers]))


def parsing(parser, parser_size: int, fake, masks, form: str, world):
    """L_GP (Eq. 8): the frozen parser's cross-entropy against the target mask; paper: class-weighted."""
    size = fake.shape[-1]
    x = fake if parser_size == size else F.interpolate(fake, size=(parser_size,) * 2, mode="bilinear",
                                                       align_corners=False)
    logits = parser(x)
    if parser_size != size:
        logits = F.interpolate(logits, size=(size,) * 2, mode="bilinear", align_corners=False)
    if form != "paper":
        return F.cross_entropy(logits.float(), masks.long())
    # A weighted mean divides by the weights of the batch's pixels: over all ranks' rows (ddp.batch_mean).
    weight = parsing_weights().to(logits.device)
    total = F.cross_entropy(logits.float(), masks.long(), weight=weight, reduction="sum")
    return ddp.batch_mean(total, weight[masks.long()].sum(), world)


def perceptual(vgg, fake, source_image, target_masks):
    """The authors' VGG19 term: L1 of relu1_1..relu5_1 (weights 1/4, 1/4, 1/4, 1/8, 1/8) per component
    masked (eyes 10, mouth 10, skin 5, hair 5); the weight, 30, is lambda_vgg."""
    from ..nets.vgg import LAYER_WEIGHTS, to_vgg_input

    total = 0
    for n in COMPONENT_NAMES:
        r = component_region(target_masks, n)
        f_fake = vgg(to_vgg_input(fake * r))
        with torch.no_grad():
            f_real = vgg(to_vgg_input(source_image * r))
        w = 5.0 if n in ("skin", "hair") else 10.0
        total = total + w * sum(lw * F.l1_loss(a, c) for lw, a, c in zip(LAYER_WEIGHTS, f_fake, f_real))
    return total


def parsing_weights():
    """The authors' class weights of the parsing loss (Helen order: background 0.2, skin 1, brows and eyes 5,
    nose 3, lips and inner mouth 8, hair 1) on our 19 labels; a label Helen lacks takes its Helen stand-in's."""
    from ..labels import HELEN_FALLBACK, HELEN_LABELS, HELEN_TO_CANONICAL, LABELS

    helen = dict(zip(HELEN_LABELS, (0.2, 1, 5, 5, 5, 5, 3, 8, 8, 8, 1)))
    by_name = {c: helen[HELEN_LABELS[i]] for i, c in enumerate(HELEN_TO_CANONICAL)}
    by_name.update({c: helen[HELEN_LABELS[HELEN_TO_CANONICAL.index(h)]] for c, h in HELEN_FALLBACK.items()})
    return torch.tensor([by_name.get(n, 1.0) for n in LABELS], dtype=torch.float32)


def partial_cross_entropy(logits, y, weight):
    """(summed loss, summed weight) of class-weighted cross-entropy over pixels with a class, plus -log(1 - p_hair)
    over NOT_HAIR pixels (weighted as background); IGNORE pixels count for nothing."""
    from ..labels import IGNORE, LABEL_INDEX, NOT_HAIR

    not_hair = y == NOT_HAIR
    target = torch.where(not_hair, torch.full_like(y, IGNORE), y)
    total = torch.nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE, reduction="sum")
    known = target[target != IGNORE]
    summed = weight[known].sum()
    if bool(not_hair.any()):
        hair = LABEL_INDEX["hair"]
        rest = torch.cat([logits[:, :hair], logits[:, hair + 1:]], 1)
        nll = torch.logsumexp(logits, 1) - torch.logsumexp(rest, 1)  # -log(1 - p_hair)
        w = weight[LABEL_INDEX["background"]]
        total = total + w * nll[not_hair].sum()
        summed = summed + w * not_hair.sum()
    return total, summed
