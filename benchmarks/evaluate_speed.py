"""Speed of `evaluate_tiny` on a TinyPerson-scale case, against pycocotools and faster-coco-eval (issue 4).

The case: 786 images of 1920×1080 (the official test set without dense images, SPEC §1.2), ~17
regular and ~6 ignore/uncertain boxes each with TinyPerson's tiny sizes, and 1000 detections per
image: a few jittered boxes around every person and ignore region, the rest scattered. Timed in
the same run:
- tinysm: `evaluate_tiny` from the two JSON paths: loading both files, AP for 7 ranges and MR for 6
  setups at 3 IoU thresholds (the full TinyPerson protocol);
- pycocotools `COCOeval.evaluate() + accumulate()` and faster-coco-eval's `COCOeval_faster`, both
  with the same 3 thresholds, maxDets [1000] and the 7 area ranges: AP only, plain COCO rules,
  files already loaded. That is less work than the TinyPerson protocol.

    python benchmarks/evaluate_speed.py [--images 786] [--repeat 2] [--skip-pycocotools]

Prints a table and writes benchmarks/out/evaluate_speed.json.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinysm.evaluation import evaluate_tiny  # noqa: E402
from tinysm.evaluation.protocol import AP_RANGES, IOU_THRESHOLDS  # noqa: E402
from tinysm.io import atomic_write_json, atomic_write_text  # noqa: E402

WIDTH, HEIGHT = 1920, 1080
OUT = Path(__file__).resolve().parent / "out" / "evaluate_speed.json"


def make_case(n_images: int, dets_per_image: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    """GT dict and an (N, 7) detection table [image_id, category_id, x, y, w, h, score], vectorised."""
    rng = np.random.default_rng(seed)
    regular = rng.poisson(17, n_images)
    flagged = rng.poisson(6, n_images)
    per_image = regular + flagged
    image_of_box = np.repeat(np.arange(n_images), per_image)
    n_boxes = len(image_of_box)
    is_flagged = np.concatenate([np.r_[np.zeros(r, bool), np.ones(f, bool)] for r, f in zip(regular, flagged)])
    size = np.exp(rng.normal(np.log(9), 0.6, n_boxes)).clip(2, 60)           # √(wh): TinyPerson-like
    size[is_flagged] *= rng.uniform(1, 6, is_flagged.sum())                     # ignore regions are larger
    aspect = np.exp(rng.normal(0, 0.5, n_boxes))
    w, h = size * np.sqrt(aspect), size / np.sqrt(aspect)
    x, y = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
    kind = rng.random(n_boxes)
    annotations = [
        {"id": i, "image_id": int(image_of_box[i]), "category_id": 1,
         "bbox": [round(float(x[i]), 2), round(float(y[i]), 2), round(float(w[i]), 2), round(float(h[i]), 2)],
         "area": round(float(w[i]), 2) * round(float(h[i]), 2), "iscrowd": 0,
         "ignore": bool(is_flagged[i] and kind[i] < 0.4), "uncertain": bool(is_flagged[i] and kind[i] >= 0.4)}
        for i in range(n_boxes)]
    gt = {"images": [{"id": i, "file_name": f"labeled_images/{i:05d}.jpg", "width": WIDTH, "height": HEIGHT}
                     for i in range(n_images)],
          "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}

    # ~6 jittered detections per box (duplicates a detector's NMS leaves), the rest scattered.
    near = np.minimum(rng.poisson(6, n_boxes), dets_per_image // max(1, int(per_image.max())))
    source = np.repeat(np.arange(n_boxes), near)
    jitter = rng.normal(0, 0.2, (len(source), 4))
    near_boxes = np.column_stack([x[source] + jitter[:, 0] * w[source], y[source] + jitter[:, 1] * h[source],
                                  w[source] * np.exp(jitter[:, 2]), h[source] * np.exp(jitter[:, 3])])
    near_image = image_of_box[source]
    n_scattered = dets_per_image - np.bincount(near_image, minlength=n_images)
    scattered_image = np.repeat(np.arange(n_images), n_scattered)
    s = np.exp(rng.normal(np.log(10), 0.7, len(scattered_image))).clip(2, 80)
    scattered = np.column_stack([rng.uniform(0, WIDTH - s), rng.uniform(0, HEIGHT - s), s, s * np.exp(rng.normal(0, 0.3, len(s)))])
    scores = np.concatenate([rng.beta(5, 2, len(source)), rng.beta(1, 6, len(scattered_image))])
    table = np.column_stack([np.concatenate([near_image, scattered_image]), np.ones(len(scores)),
                             np.vstack([near_boxes, scattered]), scores])
    return gt, table[rng.permutation(len(table))]


def write_results(table: np.ndarray, path: Path) -> None:
    """COCO results JSON (boxes at 0.01 px, scores at 6 decimals), written without a per-entry json.dumps."""
    rows = (f'{{"image_id": {int(r[0])}, "category_id": {int(r[1])}, "bbox": [{r[2]:.2f}, {r[3]:.2f}, {r[4]:.2f}, '
            f'{r[5]:.2f}], "score": {r[6]:.6f}}}' for r in table.tolist())
    atomic_write_text(path, "[" + ", ".join(rows) + "]")


def time_tinysm(gt_path: Path, results_path: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    result = evaluate_tiny(gt_path, results_path)
    return time.perf_counter() - start, result.metrics


def configure_coco_params(params) -> None:
    params.iouThrs = np.array(IOU_THRESHOLDS)
    params.maxDets = [1000]
    params.areaRng = [[lo, hi] for _, lo, hi in AP_RANGES]
    params.areaRngLbl = [name for name, _, _ in AP_RANGES]


def time_pycocotools(gt_path: Path, results_path: Path) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(results_path))
        evaluator = COCOeval(gt, dt, "bbox")
        configure_coco_params(evaluator.params)
        start = time.perf_counter()
        evaluator.evaluate()
        evaluator.accumulate()
    return time.perf_counter() - start


def time_faster_coco_eval(gt_path: Path, results_path: Path) -> float | str:
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError:
        return "not installed (pip install faster-coco-eval)"
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(results_path))
        evaluator = COCOeval_faster(gt, dt, "bbox")
        configure_coco_params(evaluator.params)
        start = time.perf_counter()
        evaluator.evaluate()
        evaluator.accumulate()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=786)
    parser.add_argument("--dets-per-image", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2, help="tinysm runs (the best and all are reported)")
    parser.add_argument("--skip-pycocotools", action="store_true", help="pycocotools takes minutes at full scale")
    args = parser.parse_args()

    start = time.perf_counter()
    gt, table = make_case(args.images, args.dets_per_image)
    with tempfile.TemporaryDirectory() as tmp:
        gt_path, results_path = Path(tmp) / "gt.json", Path(tmp) / "results.json"
        atomic_write_text(gt_path, json.dumps(gt))
        write_results(table, results_path)
        generation = time.perf_counter() - start
        tinysm_runs = [time_tinysm(gt_path, results_path) for _ in range(args.repeat)]
        tinysm_times = [seconds for seconds, _ in tinysm_runs]
        faster = time_faster_coco_eval(gt_path, results_path)
        pycoco = "skipped" if args.skip_pycocotools else time_pycocotools(gt_path, results_path)
        results_mb = results_path.stat().st_size / 1e6

    best = min(tinysm_times)
    rows = [("tinysm evaluate_tiny: AP+MR, 13 ranges x 3 IoU, JSON loading included", best),
            ("faster-coco-eval COCOeval_faster evaluate+accumulate (AP only, 7 ranges x 3 IoU)", faster),
            ("pycocotools COCOeval evaluate+accumulate (AP only, 7 ranges x 3 IoU)", pycoco)]
    n_gt = len(gt["annotations"])
    print(f"case: {args.images} images {WIDTH}x{HEIGHT}, {n_gt} GT boxes, {len(table)} detections "
          f"({results_mb:.1f} MB JSON), generated in {generation:.1f} s; {os.cpu_count()} CPUs")
    print(f"{'evaluator':<86s}{'seconds':>10s}{'vs tinysm':>11s}")
    for name, seconds in rows:
        if isinstance(seconds, float):
            print(f"{name:<86s}{seconds:>10.2f}{seconds / best:>10.1f}x")
        else:
            print(f"{name:<86s}{seconds:>10s}")
    print(f"tinysm runs: {', '.join(f'{t:.2f}' for t in tinysm_times)} s; AP50_tiny {tinysm_runs[0][1]['AP50_tiny']:.2f}, "
          f"MR50_tiny {tinysm_runs[0][1]['MR50_tiny']:.2f}")
    atomic_write_json(OUT, {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
        "cpus": os.cpu_count(), "images": args.images, "gt_boxes": n_gt, "detections": len(table),
        "results_json_mb": results_mb, "generation_s": generation, "tinysm_s": tinysm_times,
        "faster_coco_eval_s": faster, "pycocotools_s": pycoco,
    })
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
