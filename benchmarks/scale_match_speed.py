"""Speed of Scale Match (issue 3): building the target histogram from COCO-scale annotations, and
the per-image factor `scale_for` of SM and MSM (pixels excluded).

The case: a TinyPerson-like target (sizes √(wh) ~ exp(N(ln 9, 0.6²))) and a COCO-like source with
`--boxes` boxes (~860k, COCO train2017) over `--images` images (~118k, Poisson 7.3 boxes each),
sizes ~ exp(N(ln 40, 1.0²)) on 640×480 images. Timed:
- `load_annotations` of the source dict (JSON already parsed; context only),
- `SizeDistribution.from_sizes` on the raw size array, and `from_coco` on loaded annotations,
- `ScaleMatch.scale_for` and `MonotoneScaleMatch.scale_for`, per image, over `--calls` images,
- the full SM transform on one 640×480 image with its pixels (context only).
Each row is the best of `--repeat` runs, as wall time and as CPU time of this process (the CPU time
is the figure to read on a shared machine; torch's resize may use more than one thread).

    python benchmarks/scale_match_speed.py [--boxes 860000] [--images 118000] [--calls 20000]

Prints a table and writes benchmarks/out/scale_match_speed.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torchvision import tv_tensors  # noqa: E402

from tinysm.data.annotations import load_annotations  # noqa: E402
from tinysm.io import atomic_write_json  # noqa: E402
from tinysm.scale_match import MonotoneScaleMatch, ScaleMatch, SizeDistribution, object_sizes  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "scale_match_speed.json"
WIDTH, HEIGHT = 640, 480


def make_source(n_boxes: int, n_images: int, seed: int = 0) -> dict:
    """A COCO-like annotation dict: sizes ~ exp(N(ln 40, 1)), aspect ratios ~ exp(N(0, 0.5))."""
    rng = np.random.default_rng(seed)
    image_of_box = np.sort(rng.integers(0, n_images, n_boxes))
    size = np.exp(rng.normal(np.log(40), 1.0, n_boxes)).clip(1, 400)
    aspect = np.exp(rng.normal(0, 0.5, n_boxes))
    w, h = np.minimum(size * np.sqrt(aspect), WIDTH - 1), np.minimum(size / np.sqrt(aspect), HEIGHT - 1)
    x, y = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
    crowd = rng.random(n_boxes) < 0.01
    annotations = [{"id": i, "image_id": int(image_of_box[i]), "category_id": 1,
                    "bbox": [float(x[i]), float(y[i]), float(w[i]), float(h[i])], "iscrowd": int(crowd[i])}
                   for i in range(n_boxes)]
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": WIDTH, "height": HEIGHT} for i in range(n_images)]
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}


def best_of(repeat: int, work) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `repeat` runs of `work()`: on a shared machine the wall
    time includes waiting for a core, the CPU time of this process does not."""
    times = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(times)


def per_image_boxes(annotations, n: int) -> list[np.ndarray]:
    """xyxy float32 boxes of the first `n` images that have boxes."""
    boxes = []
    for anns in annotations.annotations_by_image.values():
        if anns:
            boxes.append(np.array([[x, y, x + w, y + h] for x, y, w, h in (a.bbox for a in anns)], np.float32))
        if len(boxes) == n:
            break
    return boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=860_000)
    parser.add_argument("--images", type=int, default=118_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    target_sizes = np.exp(np.random.default_rng(1).normal(np.log(9), 0.6, 42_000))
    target = SizeDistribution.from_sizes(target_sizes)
    raw = make_source(args.boxes, args.images)
    holder = []
    load_s = best_of(1, lambda: holder.append(load_annotations(raw)))
    source = holder[0]
    source_sizes = object_sizes(source)

    rows = {"load_annotations (dict, context)": (*load_s, "s")}
    timed = {"histogram from_sizes": lambda: SizeDistribution.from_sizes(source_sizes),
             "histogram from_coco (loaded)": lambda: SizeDistribution.from_coco(source),
             "MSM setup (source knots)": lambda: MonotoneScaleMatch(target, source_sizes)}
    rows.update({name: (*best_of(args.repeat, work), "s") for name, work in timed.items()})

    boxes = per_image_boxes(source, args.calls)
    sm = ScaleMatch(target, rng=np.random.RandomState(0))
    msm = MonotoneScaleMatch(target, source_sizes)
    for name, transform in (("SM scale_for", sm), ("MSM scale_for", msm)):
        wall, cpu = best_of(args.repeat, lambda: [transform.scale_for(b) for b in boxes])
        rows[f"{name} per image"] = (wall / len(boxes) * 1e6, cpu / len(boxes) * 1e6, "µs")

    image = tv_tensors.Image(torch.randint(0, 256, (3, HEIGHT, WIDTH), dtype=torch.uint8))
    target_dict = {"boxes": tv_tensors.BoundingBoxes(torch.from_numpy(boxes[0]), format="XYXY",
                                                     canvas_size=(HEIGHT, WIDTH)),
                   "labels": torch.ones(len(boxes[0]), dtype=torch.int64), "image_id": 0}
    calls = 200
    wall, cpu = best_of(args.repeat, lambda: [sm(image, target_dict) for _ in range(calls)])
    rows["SM transform with pixels, 640×480 (context)"] = (wall / calls * 1e6, cpu / calls * 1e6, "µs")

    print(f"source: {len(source.images)} images, {len(source.annotations)} boxes; "
          f"SM: {len(boxes)} images; best of {args.repeat}; {os.cpu_count()} CPUs")
    print(f"{'measurement':<46} {'wall':>12} {'CPU':>12}")
    for name, (wall, cpu, unit) in rows.items():
        print(f"{name:<46} {wall:>10.3f} {unit:<2}{cpu:>10.3f} {unit}")
    atomic_write_json(OUT, {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "torch": torch.__version__},
        "case": {"boxes": len(source.annotations), "images": len(source.images), "scale_for_images": len(boxes),
                 "repeat": args.repeat},
        "results": {name: {"wall": wall, "cpu": cpu, "unit": unit} for name, (wall, cpu, unit) in rows.items()},
    })
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
