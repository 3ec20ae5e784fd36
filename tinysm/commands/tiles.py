"""`tinysm tiles`: cut a full-image annotation file into a tile ("corner") file (reference §2)."""
from __future__ import annotations

import argparse

from tinysm.commands import check_output_file

HELP = "cut a COCO/TinyPerson annotation file into 640x512 tile annotations (docs/reference.md §2)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="full-image annotation JSON")
    parser.add_argument("output", help="tile annotation JSON to write")
    parser.add_argument("--tile", type=int, nargs=2, default=[640, 512], metavar=("W", "H"))
    parser.add_argument("--overlap", type=int, nargs=2, default=[50, 50], metavar=("X", "Y"),
                        help="50 50 for training tiles, 100 100 for test tiles (default: 50 50)")
    parser.add_argument("--keep-ratio", type=float, default=0.7,
                        help="keep a box when sqrt(clipped area / area) >= this (default 0.7)")
    parser.add_argument("--keep-empty", action="store_true", help="keep tiles without boxes")


def run(args: argparse.Namespace) -> int:
    from tinysm.data.annotations import load_annotations, save_annotations
    from tinysm.data.tiles import cut_tiles
    from tinysm.io import refuse_input_as_output

    check_output_file(args.output, "OUTPUT")
    refuse_input_as_output(args.output, {"input annotation file": args.input})
    full = load_annotations(args.input)
    tiles = cut_tiles(full, tuple(args.tile), tuple(args.overlap), args.keep_ratio, args.keep_empty)
    save_annotations(tiles, args.output)
    print(f"{len(full.images)} images, {len(full.annotations)} boxes -> "
          f"{len(tiles.images)} tiles, {len(tiles.annotations)} boxes: {args.output}")
    return 0
