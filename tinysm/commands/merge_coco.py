"""`tinysm merge-coco COCO_ROOT`: the reference's pre-training file, train2017 + val2017 (reference §8)."""
from __future__ import annotations

import argparse

HELP = "merge COCO 2017 train and val annotations into instances_merge2017.json (docs/reference.md §8)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("coco_root", help="the COCO 2017 folder: annotations/instances_{train,val}2017.json")
    parser.add_argument("--out", help="the merged file (default: COCO_ROOT/annotations/instances_merge2017.json)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tinysm.data.annotations import load_annotations
    from tinysm.data.coco_merge import merge_coco_splits
    from tinysm.data.layout import CocoLayout
    from tinysm.data.summary import summarize

    out = merge_coco_splits(CocoLayout(Path(args.coco_root)), out=Path(args.out) if args.out else None)
    print(summarize(load_annotations(out), "coco merge2017 (train2017 + val2017)").format())
    print(f"written: {out}")
    return 0
