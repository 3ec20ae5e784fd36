"""Speed of tiled full-image inference (`tinysm.engine.predict`, reference §2) for both detectors (issue 5).

The case: 1920×1080 frames (12 test tiles of 640×512, overlap 100; `--frame` changes the size, e.g.
one tile per frame for CPU smoke runs), batched `--batch-size` tiles at a time, merged with each
detector's reference §2.3 variant. Weights are untrained, with the classifier bias set to 0 so that every
tile emits a full candidate set (score 0.5 > 0.05): the merge works at its worst case (Faster: up
to 1000 per tile; RetinaNet: up to 2000 per level before the NMS). Reported per detector: images/s
and tiles/s (wall), CPU seconds per image (all threads of this process: the honest figure on a
shared machine), share of wall time in the merge, detections per image and peak memory (CUDA: peak
allocated; CPU: the process's peak resident set so far).

`--scores empty` is the other extreme: the classifier bias set so that no score passes 0.05, the
merge has nothing to do and the figure is the detector and the tiling alone (what a GPU is for;
a trained detector lies between the two).

    python benchmarks/infer_speed.py [--backbone resnet18] [--images 2] [--device cpu] [--amp]
                                     [--frame 1920 1080] [--fpn-channels 256] [--scores saturated|empty]
                                     [--out PATH]

Prints a table and writes benchmarks/out/infer_speed.json (or `--out`).
"""
from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinysm.engine.predict as predict_module  # noqa: E402
from tinysm.data.tiles import tile_grid  # noqa: E402
from tinysm.io import atomic_write_json  # noqa: E402
from tinysm.models import build_detector  # noqa: E402

WIDTH, HEIGHT = 1920, 1080
OUT = Path(__file__).resolve().parent / "out" / "infer_speed.json"


def saturated_detector(name: str, backbone: str, device: torch.device, fpn_channels: int = 256,
                       scores: str = "saturated") -> nn.Module:
    """An untrained detector whose every anchor/proposal scores about 0.5 (worst case for the merge),
    or with `scores="empty"` about e^-30 (no candidate passes the score threshold: nothing to merge)."""
    torch.manual_seed(0)
    model = build_detector(name, 1, backbone=backbone, fpn_channels=fpn_channels)
    classifier = (model.head.classification_head.cls_logits if name == "adaptive_retinanet"
                  else model.roi_heads.box_predictor.cls_score)
    nn.init.zeros_(classifier.bias)
    if scores == "empty":
        with torch.no_grad():
            if name == "adaptive_retinanet":
                classifier.bias.fill_(-30.0)     # sigmoid(-30) per class
            else:
                classifier.bias[0].fill_(30.0)   # the background logit (index 0) 30 above the person's
    return model.to(device).eval()


def frames(count: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> list[tuple[torch.Tensor, dict[str, int]]]:
    """Noise frames of `size` (width, height), uint8 as a DetectionDataset yields them."""
    generator = torch.Generator().manual_seed(0)
    width, height = size
    return [(torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator), {"image_id": i})
            for i in range(count)]


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10  # Linux reports KiB


def measure(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, float | str]:
    """One detector: a warm-up image, then `args.images` timed images."""
    model = saturated_detector(name, args.backbone, device, args.fpn_channels, args.scores)
    size = tuple(args.frame)
    options = dict(batch_size=args.batch_size, device=device, amp=args.amp, progress=False)
    predict_module.predict(model, frames(1, size), **options)  # warm-up: kernels, allocator, thread pools
    merge_seconds = 0.0
    merge_image = predict_module.merge_image

    def timed_merge(*merge_args, **merge_kwargs):
        nonlocal merge_seconds
        start = time.perf_counter()
        merged = merge_image(*merge_args, **merge_kwargs)
        merge_seconds += time.perf_counter() - start
        return merged

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    images = frames(args.images, size)
    predict_module.merge_image = timed_merge
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        results = predict_module.predict(model, images, **options)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        predict_module.merge_image = merge_image
    tiles = args.images * len(tile_grid(*size))
    return {"detector": name, "images_per_s": args.images / seconds, "tiles_per_s": tiles / seconds,
            "merge_share": merge_seconds / seconds, "detections_per_image": len(results) / args.images,
            "peak_memory_mib": peak_memory_mib(device), "seconds": seconds,
            "cpu_seconds_per_image": cpu_seconds / args.images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18", help="resnet18 for CPU figures, resnet50 as in the paper")
    parser.add_argument("--images", type=int, default=2, help="timed 1920×1080 frames per detector")
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per forward pass")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", action="store_true", help="fp16 autocast (CUDA only)")
    parser.add_argument("--detectors", nargs="+", default=["faster_fpn", "adaptive_retinanet"])
    parser.add_argument("--frame", type=int, nargs=2, default=[WIDTH, HEIGHT], metavar=("W", "H"),
                        help="frame size; smaller than 1920×1080 only for smoke runs")
    parser.add_argument("--fpn-channels", type=int, default=256, help="256 as in reference §7")
    parser.add_argument("--scores", choices=("saturated", "empty"), default="saturated",
                        help="every candidate at 0.5 (the merge's worst case) or none above the threshold")
    parser.add_argument("--out", type=Path, default=OUT, help="the JSON file to write")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [measure(name, args, device) for name in args.detectors]

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"
    print(f"tiled inference, {args.frame[0]}×{args.frame[1]} frames, 640×512 tiles (overlap 100), "
          f"batch {args.batch_size}, {args.backbone}{', AMP fp16' if args.amp else ''}, {args.scores} scores, "
          f"{device_name}")
    print(f"{'detector':<20}{'images/s':>10}{'tiles/s':>10}{'CPU s/img':>11}{'merge %':>9}{'dets/img':>10}"
          f"{'peak MiB':>10}")
    for row in rows:
        print(f"{row['detector']:<20}{row['images_per_s']:>10.3f}{row['tiles_per_s']:>10.2f}"
              f"{row['cpu_seconds_per_image']:>11.1f}{100 * row['merge_share']:>9.1f}"
              f"{row['detections_per_image']:>10.0f}{row['peak_memory_mib']:>10.0f}")
    atomic_write_json(args.out, {
        "benchmark": "infer_speed", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device_name, "torch": torch.__version__, "backbone": args.backbone, "images": args.images,
        "batch_size": args.batch_size, "amp": args.amp, "frame": list(args.frame),
        "tiles_per_image": len(tile_grid(*args.frame)), "fpn_channels": args.fpn_channels, "scores": args.scores,
        "device_type": device.type, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
