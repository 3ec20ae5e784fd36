"""Training speed of both detectors on 640×512 tiles through the real data pipeline (issue 5).

The case: `--frames` JPEG frames of 1280×1024 written once to a temporary folder, each cut into
four 640×512 training tiles with ~20 tiny boxes (reference §2; `--tile` shrinks both for CPU smoke runs);
`DetectionDataset` decodes and crops them in `--workers` DataLoader processes, `TrainPreset` flips,
and `train_one_epoch` runs the engine's step (SGD, fp16 autocast + GradScaler with `--amp` on CUDA).
After `--warmup` untimed steps, `--steps` steps are timed. Reported per detector: images/s, step
time, the fraction of step time spent waiting for the next batch (target on a GPU: < 10%), and peak
memory (CUDA: peak allocated; CPU: the process's peak resident set so far).

    python benchmarks/train_speed.py [--backbone resnet18] [--batch-size 8] [--amp] [--workers 4] [--threads N]
                                     [--tile 640 512] [--fpn-channels 256] [--out PATH]

Prints a table and writes benchmarks/out/train_speed.json (or `--out`).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinysm.data.images import write_jpeg  # noqa: E402
from tinysm.engine.config import train_config_from_mapping  # noqa: E402
from tinysm.engine.data import build_training_data  # noqa: E402
from tinysm.engine.distributed import setup_distributed  # noqa: E402
from tinysm.engine.train import StepRecord, build_model, build_training_state, train_one_epoch  # noqa: E402
from tinysm.io import atomic_write_json  # noqa: E402

TILE = (640, 512)  # frames are 2×2 tiles (1280×1024) without overlap
OUT = Path(__file__).resolve().parent / "out" / "train_speed.json"


def write_frames(root: Path, count: int, boxes_per_tile: int = 20, seed: int = 0,
                 tile: tuple[int, int] = TILE) -> Path:
    """JPEG frames of 2×2 `tile`s with smooth random content and tiny bright boxes; a tile annotation
    file for them."""
    generator = torch.Generator().manual_seed(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    width, height = 2 * tile[0], 2 * tile[1]
    images, annotations = [], []
    for frame in range(count):
        coarse = torch.rand(3, height // 32, width // 32, generator=generator)
        pixels = torch.nn.functional.interpolate(coarse[None], size=(height, width), mode="bilinear")[0]
        name = f"{frame:04d}.jpg"
        for corner in ((x, y, x + tile[0], y + tile[1]) for y in (0, tile[1]) for x in (0, tile[0])):
            tile_id = len(images)
            images.append({"id": tile_id, "file_name": name, "width": tile[0], "height": tile[1],
                           "corner": list(corner)})
            for _ in range(boxes_per_tile):
                w, h = (int(v) for v in torch.randint(4, 20, (2,), generator=generator))
                x = int(torch.randint(0, tile[0] - w, (), generator=generator))
                y = int(torch.randint(0, tile[1] - h, (), generator=generator))
                pixels[:, corner[1] + y:corner[1] + y + h, corner[0] + x:corner[0] + x + w] = 1.0
                annotations.append({"id": len(annotations), "image_id": tile_id, "category_id": 1,
                                    "bbox": [x, y, w, h], "area": w * h})
        write_jpeg((pixels * 255).to(torch.uint8), root / "images" / name, quality=90)
    path = root / "tiles.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "person"}]}))
    return path


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10  # Linux reports KiB


def measure(name: str, args: argparse.Namespace, data: Path) -> dict[str, float | str]:
    """One detector: `args.warmup` untimed steps, then `args.steps` timed ones."""
    config = train_config_from_mapping({
        "detector": name, "backbone": args.backbone, "train_annotations": str(data / "tiles.json"),
        "train_images": str(data / "images"), "out_dir": str(data / "unused"), "device": args.device,
        "workers": args.workers, "batch_size": args.batch_size, "amp": args.amp, "warmup_iters": 0,
        "epochs": 1000, "milestones": [], "lr_per_image": 0.0025,
        "detector_options": {"fpn_channels": args.fpn_channels}}, "train_speed")
    context = setup_distributed(config.device)
    loader, dataset, sampler, category_ids = build_training_data(config, context)
    model = build_model(config, category_ids, context)
    state = build_training_state(model, config, context, len(loader))
    records: list[StepRecord] = []
    epoch = 0
    while len(records) < args.warmup + args.steps:
        dataset.set_epoch(epoch)
        sampler.set_position(epoch)
        if len(records) == args.warmup and context.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(context.device)
        train_one_epoch(model, state, loader, context, args.warmup + args.steps, amp=config.amp,
                        after_step=records.append)
        epoch += 1
    timed = records[args.warmup:]
    seconds = sum(r.step_time for r in timed)
    return {"detector": name, "images_per_s": sum(r.images for r in timed) / seconds,
            "step_s": seconds / len(timed), "data_wait": sum(r.data_time for r in timed) / seconds,
            "peak_memory_mib": peak_memory_mib(context.device), "steps": len(timed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18", help="resnet18 for CPU figures, resnet50 as in the paper")
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per step")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per detector")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--frames", type=int, default=16, help="frames on disk, 2×2 tiles each")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader worker processes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", action="store_true", help="fp16 autocast + GradScaler (CUDA only)")
    parser.add_argument("--detectors", nargs="+", default=["faster_fpn", "adaptive_retinanet"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--tile", type=int, nargs=2, default=list(TILE), metavar=("W", "H"),
                        help="training tile (frames are 2×2 tiles); smaller than 640×512 only for smoke runs")
    parser.add_argument("--fpn-channels", type=int, default=256, help="256 as in reference §7")
    parser.add_argument("--out", type=Path, default=OUT, help="the JSON file to write")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="train_speed_") as folder:
        write_frames(Path(folder), args.frames, tile=tuple(args.tile))
        rows = [measure(name, args, Path(folder)) for name in args.detectors]

    device = torch.device(args.device)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"
    print(f"training, {args.tile[0]}×{args.tile[1]} tiles, batch {args.batch_size}, {args.workers} workers, "
          f"{args.backbone}{', AMP fp16' if args.amp else ''}, {device_name}")
    print(f"{'detector':<20}{'images/s':>10}{'step s':>9}{'data wait %':>13}{'peak MiB':>10}")
    for row in rows:
        print(f"{row['detector']:<20}{row['images_per_s']:>10.2f}{row['step_s']:>9.3f}"
              f"{100 * row['data_wait']:>13.1f}{row['peak_memory_mib']:>10.0f}")
    atomic_write_json(args.out, {
        "benchmark": "train_speed", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device_name, "torch": torch.__version__, "backbone": args.backbone,
        "batch_size": args.batch_size, "workers": args.workers, "amp": args.amp, "tile": list(args.tile),
        "fpn_channels": args.fpn_channels, "device_type": device.type, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
