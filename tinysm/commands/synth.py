"""`tinysm synth`: write a synthetic TinyPerson + COCO set in the official layouts and summarise it."""
from __future__ import annotations

import argparse

HELP = "generate synthetic TinyPerson and COCO data in the official layouts (no download needed)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="data/synthetic",
                        help="folder to write tiny_set/ and coco/ into (default: data/synthetic)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, byte-identical data (default 0)")
    parser.add_argument("--train", type=int, default=100, help="TinyPerson training frames (default 100)")
    parser.add_argument("--test", type=int, default=100, help="TinyPerson test frames (default 100)")
    parser.add_argument("--coco-train", type=int, default=400, help="COCO train2017 images (default 400)")
    parser.add_argument("--coco-val", type=int, default=50, help="COCO val2017 images (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing tiny_set/ and coco/")
    parser.add_argument("--figure", default=None, metavar="PNG",
                        help="also save example crops with boxes (e.g. figures/synthetic_examples.png)")


def run(args: argparse.Namespace) -> int:
    from tinysm.data.synth import generate
    from tinysm.data.synth.preview import save_examples_figure

    dataset = generate(args.out, seed=args.seed, train=args.train, test=args.test, coco_train=args.coco_train,
                       coco_val=args.coco_val, workers=args.workers, overwrite=args.overwrite)
    print(dataset.format())
    if args.figure:
        print(f"examples: {save_examples_figure(dataset.tiny_set, dataset.coco, args.figure)}")
    return 0
