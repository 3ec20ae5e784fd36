"""Speed of `evaluate_tiny` on a TinyPerson-scale case, against pycocotools and faster-coco-eval (issue 4).

The case: 786 images of 1920×1080 (the official test set without dense images, reference §1.2), ~17
regular and ~6 ignore/uncertain boxes each with TinyPerson's tiny sizes, and 1000 detections per
image: a few jittered boxes around every person and ignore region, the rest scattered. Timed in
the same run:
- tinysm: `evaluate_tiny` from the two JSON paths: loading both files, AP for 7 ranges and MR for 6
  setups at 3 IoU thresholds (the full TinyPerson protocol); and the same from inputs already loaded;
- pycocotools `COCOeval.evaluate() + accumulate()` and faster-coco-eval's `COCOeval_faster`, both
  with the same 3 thresholds, maxDets [1000] and the 7 area ranges: AP only, plain COCO rules,
  files already loaded. That is less work than the TinyPerson protocol.

    python benchmarks/evaluate_speed.py [--images 786] [--repeat 2] [--skip-pycocotools]

Prints wall and process-CPU seconds (the machine is shared: CPU time is the steadier figure) and
writes benchmarks/out/evaluate_speed.json.
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
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinysm.data.annotations import load_annotations  # noqa: E402
from tinysm.data.detections import load_detections  # noqa: E402
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


class Stopwatch:
    """Wall and process CPU seconds of a block: on a shared machine CPU time is the fairer figure."""

    def __enter__(self) -> "Stopwatch":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def time_tinysm(gt_path: Path, results_path: Path) -> tuple[Stopwatch, dict]:
    with Stopwatch() as watch:
        result = evaluate_tiny(gt_path, results_path)
    return watch, result.metrics


def configure_coco_params(params) -> None:
    params.iouThrs = np.array(IOU_THRESHOLDS)
    params.maxDets = [1000]
    params.areaRng = [[lo, hi] for _, lo, hi in AP_RANGES]
    params.areaRngLbl = [name for name, _, _ in AP_RANGES]


def time_tinysm_loaded(gt_path: Path, results_path: Path) -> Stopwatch:
    """The same evaluation from inputs already in memory: what the COCO evaluators' timings cover."""
    gt = load_annotations(gt_path)
    detections = load_detections(results_path, [image.id for image in gt.images])
    with Stopwatch() as watch:
        evaluate_tiny(gt, detections)
    return watch


def time_coco_style(coco_class: type, eval_class: type, gt_path: Path, results_path: Path) -> Stopwatch:
    """evaluate()+accumulate() of a pycocotools-style evaluator, files loaded before the clock starts."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "annotation id 0": the official files start ids at 0 too
        gt = coco_class(str(gt_path))
        dt = gt.loadRes(str(results_path))
        evaluator = eval_class(gt, dt, "bbox")
        configure_coco_params(evaluator.params)
        with Stopwatch() as watch:
            evaluator.evaluate()
            evaluator.accumulate()
    return watch


def time_pycocotools(gt_path: Path, results_path: Path) -> Stopwatch:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return time_coco_style(COCO, COCOeval, gt_path, results_path)


def time_faster_coco_eval(gt_path: Path, results_path: Path) -> Stopwatch | str:
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError:
        return "not installed (pip install faster-coco-eval)"
    return time_coco_style(COCO, COCOeval_faster, gt_path, results_path)


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
        loaded = time_tinysm_loaded(gt_path, results_path)
        faster = time_faster_coco_eval(gt_path, results_path)
        pycoco = "skipped" if args.skip_pycocotools else time_pycocotools(gt_path, results_path)
        results_mb = results_path.stat().st_size / 1e6

    best = min((watch for watch, _ in tinysm_runs), key=lambda watch: watch.wall)
    rows = [("tinysm evaluate_tiny: AP+MR, 13 ranges x 3 IoU, JSON loading included", best),
            ("tinysm evaluate_tiny, inputs already loaded", loaded),
            ("faster-coco-eval COCOeval_faster evaluate+accumulate (AP, 7 ranges x 3 IoU)", faster),
            ("pycocotools COCOeval evaluate+accumulate (AP, 7 ranges x 3 IoU)", pycoco)]
    n_gt = len(gt["annotations"])
    metrics = tinysm_runs[0][1]
    print(f"case: {args.images} images {WIDTH}x{HEIGHT}, {n_gt} GT boxes, {len(table)} detections "
          f"({results_mb:.1f} MB JSON), generated in {generation:.1f} s; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'evaluator':<80s}{'wall s':>9s}{'CPU s':>9s}{'CPU vs tinysm':>15s}")
    for name, watch in rows:
        if isinstance(watch, Stopwatch):
            print(f"{name:<80s}{watch.wall:>9.2f}{watch.cpu:>9.2f}{watch.cpu / best.cpu:>14.1f}x")
        else:
            print(f"{name:<80s}{watch:>9s}")
    print(f"tinysm runs (wall/CPU s): {', '.join(f'{w.wall:.2f}/{w.cpu:.2f}' for w, _ in tinysm_runs)}; "
          f"AP50_tiny {metrics['AP50_tiny']:.2f}, MR50_tiny {metrics['MR50_tiny']:.2f}")

    def seconds(watch):
        return {"wall": watch.wall, "cpu": watch.cpu} if isinstance(watch, Stopwatch) else watch

    atomic_write_json(OUT, {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "images": args.images, "gt_boxes": n_gt,
        "detections": len(table), "results_json_mb": results_mb, "generation_s": generation,
        "tinysm_s": [seconds(watch) for watch, _ in tinysm_runs], "tinysm_loaded_s": seconds(loaded),
        "faster_coco_eval_s": seconds(faster),
        "pycocotools_s": seconds(pycoco), "AP50_tiny": metrics["AP50_tiny"], "MR50_tiny": metrics["MR50_tiny"],
    })
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
