"""`tinysm evaluate`: TinyPerson AP and MR of a COCO results file (reference §6), optionally after a tile merge (reference §2.3)."""
from __future__ import annotations

import argparse

from tinysm.commands import check_output_file

HELP = "TinyPerson AP and MR of a COCO detection results file (docs/reference.md §6)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gt", help="ground-truth annotation JSON (the 'all' task, with ignore/uncertain flags)")
    parser.add_argument("results", help="COCO detection results JSON: a list of {image_id, category_id, bbox, score}")
    parser.add_argument("--max-dets", type=int, default=1000,
                        help="AP's detections per image (default 1000; 200 reproduces the older tables); MR uses 1000")
    parser.add_argument("--reference-quirks", action="store_true",
                        help="reproduce the two bugs of the reference code (docs/reference.md §6.3) for bit-equal numbers")
    parser.add_argument("--json", metavar="OUT.json", help="write the flat metrics dict (percent, -1 undefined)")
    parser.add_argument("--merge-tiles", metavar="TILES.json",
                        help="RESULTS are per tile of this tile annotation file: shift and NMS them into GT images first")
    parser.add_argument("--merge-variant", choices=("two_stage", "one_stage"), default="two_stage",
                        help="tile merge of docs/reference.md §2.3: two_stage (Faster-FPN: per-tile NMS, no cap) or "
                             "one_stage (RetinaNet: one NMS, top 1000)")


def run(args: argparse.Namespace) -> int:
    from tinysm.data.annotations import load_annotations
    from tinysm.data.merge import MERGE_VARIANTS, merge_tile_detections
    from tinysm.evaluation import evaluate_tiny
    from tinysm.io import atomic_write_json, refuse_input_as_output

    if args.max_dets < 1:
        raise ValueError(f"--max-dets must be a positive integer, got {args.max_dets}")
    check_output_file(args.json, "--json")
    if args.json:
        refuse_input_as_output(args.json, {"ground-truth file": args.gt, "results file": args.results,
                                           "tile annotation file": args.merge_tiles})
    gt = load_annotations(args.gt)
    detections = args.results
    if args.merge_tiles:
        detections = merge_tile_detections(args.results, load_annotations(args.merge_tiles), gt,
                                           MERGE_VARIANTS[args.merge_variant]())
    result = evaluate_tiny(gt, detections, max_dets=args.max_dets, reference_quirks=args.reference_quirks)
    print(result.table())
    if args.json:
        atomic_write_json(args.json, result.metrics)
        print(f"metrics: {args.json}")
    return 0
