"""The zero-weight (classical) edits of this tree against those of another commit (by default the last one
before issue 17), by two measures per edit type:

* mask accuracy (the paper's Table 2 measure): parse the result with this tree's default parser and compare it
  with the target mask over the face and hair pixels of either;
* seam score: the mean gradient magnitude of the result along the border of the region the edit changed,
  divided by the mean gradient magnitude of the input face (its own edges); lower is less visible. The changed
  region is where the result differs from the input by more than 3 levels after a 5×5 median, so the grain of a
  filled region does not count as a border.

    python benchmarks/bench_classical.py [../shared/data/helen-samples] [--against REF]
                                         [--celebamask ../shared/data/celebamask-mini [--pairs 80]]

Faces: skimage's astronaut and matplotlib's grace_hopper, and the aligned Helen samples when their folder is
given. --celebamask adds swap+ on held-out CelebAMask-HQ pairs (the split and hand-made masks of
eval_generator.py: each target gets the face of one reference person): FID of the swaps against the references
beside its floor (the real targets against them, at the same counts), mask accuracy (the default parser on each
result against the target's hand-made mask, pixels pooled) and seam score, both commits. The other commit's
results are rendered by its own code (a temporary git worktree, in a subprocess) and judged here, with the same
parser and measures as this tree's. A commit before the shipped face graphs imports mediapipe 0.10.21 itself:
run it in an environment with the `mediapipe-check` extra.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

EDITS = ("hair->skin", "hair->background", "grow:eyes:2", "swap+", "transfer mouth", "transfer hair")


def faces(helen: Path | None):
    import matplotlib.cbook
    import skimage.data

    from mgpe_toolkit.io import read_image

    out = [("astronaut", skimage.data.astronaut(), False),
           ("grace_hopper", read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), False)]
    if helen is not None:
        out += [(p.stem, read_image(p), True) for p in sorted((helen / "images").glob("*.png"))]
    return out


def seam_score(result: np.ndarray, before: np.ndarray) -> float:
    import cv2

    diff = np.abs(result.astype(int) - before.astype(int)).max(-1).clip(0, 255).astype(np.uint8)
    changed = (cv2.medianBlur(diff, 5) > 3).astype(np.uint8)
    if changed.sum() < 50:
        return float("nan")
    k = np.ones((3, 3), np.uint8)
    border = (cv2.dilate(changed, k) - cv2.erode(changed, k)).astype(bool)

    def grad(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))

    return float(grad(result)[border].mean() / max(grad(before).mean(), 1e-6))


def render(data) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Every edit on every face with the default classical stages: face name -> (result, target mask, input)."""
    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.errors import MgpeError

    pipe = Pipeline()
    prepared = [pipe.prepare(img, aligned=aligned) for _, img, aligned in data]
    out = {e: {} for e in EDITS}
    for i, face in enumerate(prepared):
        other = prepared[(i + 1) % len(prepared)]
        for edit in EDITS:
            try:
                if edit == "swap+":
                    result = pipe.swap(other, face)
                elif edit.startswith("transfer"):
                    result = pipe.transfer(other, face, [edit.split()[1]])
                else:
                    result = pipe.edit(face, [edit])
            except MgpeError:  # e.g. a source without hair, or faces of two sizes
                continue
            out[edit][data[i][0]] = (result.aligned, result.mask.labels, face.image)
    return out


def score(rendered, names: dict[str, set[str]]) -> dict[str, tuple[list[float], list[float]]]:
    """Mask accuracy and seam score of each edit over the faces `names` (per edit: those both commits made)."""
    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.labels import face_hair_region

    judge = Pipeline()
    scores = {}
    for edit, results in rendered.items():
        acc, seam = [], []
        for image, target, before in (results[n] for n in sorted(names[edit])):
            parsed = judge.parse(image).labels
            region = face_hair_region(target) | face_hair_region(parsed)
            acc.append(float((parsed[region] == target[region]).mean()))
            seam.append(seam_score(image, before))
        scores[edit] = (acc, seam)
    return scores


def save_rendered(path: Path, rendered: dict) -> None:
    """The rendered results as arrays in an .npz, keyed EDIT|FACE|result, EDIT|FACE|target, EDIT|FACE|input."""
    arrays = {f"{edit}|{name}|{part}": a for edit, faces_ in rendered.items() for name, trio in faces_.items()
              for part, a in zip(("result", "target", "input"), trio)}
    np.savez(path, **arrays)


def load_rendered(path: Path) -> dict:
    rendered = {e: {} for e in EDITS}
    with np.load(path) as z:
        for key in z.files:
            edit, name, part = key.split("|")
            if part == "result":
                rendered[edit][name] = tuple(z[f"{edit}|{name}|{p}"] for p in ("result", "target", "input"))
    return rendered


def render_swaps(pairs: Path, out: Path) -> None:
    """swap+ of every (source, target) pair saved in `pairs` (.npz: source_image, source_labels, target_image,
    target_labels, stacked) with the hand-made masks, by this interpreter's mgpe_toolkit; results into `out`."""
    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.types import FaceMask, PreparedFace

    pipe = Pipeline()
    with np.load(pairs) as z:
        results = [pipe.swap(PreparedFace(si, FaceMask(sl)), PreparedFace(ti, FaceMask(tl))).aligned
                   for si, sl, ti, tl in zip(z["source_image"], z["source_labels"], z["target_image"],
                                             z["target_labels"])]
    np.save(out, np.stack(results))


def held_out_swaps(folder: Path, pairs: int, against: str, work: Path) -> None:
    """Swap+ on held-out celebamask-mini pairs by commit `against` and by this tree: FID beside its floor, mask
    accuracy and seam score of each."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from eval_generator import held_out_pairs, mask_agreement

    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.metrics.fid import InceptionFeatures, frechet_distance, statistics

    targets, sources, references, _ = held_out_pairs(folder, Path(__file__).resolve().parents[1] / "runs" / "caches",
                                                     pairs)
    n = len(targets)
    saved = work / "pairs.npz"
    np.savez(saved, source_image=np.stack([f[0] for f in sources]), source_labels=np.stack([f[1] for f in sources]),
             target_image=np.stack([f[0] for f in targets]), target_labels=np.stack([f[1] for f in targets]))
    old = render_at(against, None, ["--render-swaps", str(saved)])
    render_swaps(saved, work / "new.npy")
    new = np.load(work / "new.npy")
    features, judge = InceptionFeatures(), Pipeline()
    ref_stats = statistics(features([f[0] for f in references]))
    floor = frechet_distance(*statistics(features([f[0] for f in targets])), *ref_stats)
    print(f"held-out celebamask-mini: {n} swaps onto targets, {len(references)} reference faces; FID floor (real "
          f"targets vs references) {floor:.2f}")
    print(f"{'swap+ (held out)':18s} {'FID':>8s} {'mask accuracy':>14s} {'seam':>7s}")
    for name, results in ((f"before {against[:10]}", old), ("after", new)):
        fid = frechet_distance(*statistics(features(list(results))), *ref_stats)
        seam = np.nanmean([seam_score(r, t[0]) for r, t in zip(results, targets)])
        print(f"{name:18s} {fid:8.2f} {mask_agreement(judge, results, targets):14.4f} {seam:7.3f}")


def render_at(ref: str, helen: Path | None, task: list[str] | None = None) -> dict | np.ndarray:
    """The results of commit `ref`'s own code: a temporary worktree renders them in a subprocess (the edits of
    `render`, or the held-out swaps of `task` = ["--render-swaps", PAIRS])."""
    import os
    import subprocess
    import sys
    import tempfile

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tree, dump = Path(tmp) / "tree", Path(tmp) / "rendered.npz"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "--quiet", str(tree), ref], check=True)
        try:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--render-to", str(dump), *(task or [])]
            cmd += [str(helen.resolve())] if helen is not None else []
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run(cmd, check=True, cwd=tree, env=env)
            return np.load(dump.with_suffix(".npy")) if task else load_rendered(dump)
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=False)


ISSUE_17_BASE = "099aecd90083a5c483476254c9f3bfca73ffaec6"  # the last commit before issue 17's changes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("helen", nargs="?", type=Path, help="helen-samples folder (images/ + labels/), optional")
    ap.add_argument("--against", default=ISSUE_17_BASE, help="the commit to compare with (default: before issue 17)")
    ap.add_argument("--celebamask", type=Path, help="celebamask-mini: add swap+ on its held-out pairs")
    ap.add_argument("--pairs", type=int, default=80, help="at most this many held-out swaps (the split has 67)")
    ap.add_argument("--render-to", type=Path, help=argparse.SUPPRESS)  # used by render_at's subprocess
    ap.add_argument("--render-swaps", type=Path, help=argparse.SUPPRESS)  # with --render-to: held-out swaps
    args = ap.parse_args()
    if args.render_swaps:
        render_swaps(args.render_swaps, args.render_to.with_suffix(".npy"))
        return
    helen = args.helen if args.helen and (args.helen / "images").is_dir() else None
    data = faces(helen)
    if args.render_to:
        save_rendered(args.render_to, render(data))
        return
    old, new = render_at(args.against, helen), render(data)
    both = {e: set(old[e]) & set(new[e]) for e in EDITS}
    before, after = score(old, both), score(new, both)
    print(f"{len(data)} faces; mask accuracy (higher is better) and seam score (lower is better), mean over faces; "
          f"before: {args.against[:10]}, after: this tree")
    print(f"{'edit':18s} {'accuracy before':>16s} {'after':>7s} {'seam before':>12s} {'after':>7s}")
    for edit in EDITS:
        (a0, s0), (a1, s1) = before[edit], after[edit]
        only = f"; {len(set(new[edit]) - set(old[edit]))} more only now" if set(new[edit]) - set(old[edit]) else ""
        print(f"{edit:18s} {np.mean(a0):16.3f} {np.mean(a1):7.3f} {np.nanmean(s0):12.3f} {np.nanmean(s1):7.3f}"
              f"   ({len(a1)} faces{only})")
    if args.celebamask:
        import tempfile

        with tempfile.TemporaryDirectory() as work:
            held_out_swaps(args.celebamask, args.pairs, args.against, Path(work))


if __name__ == "__main__":
    main()
