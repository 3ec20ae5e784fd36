"""`tinysm erase`: write "erase" copies of a dataset's images (reference §1.2)."""
from __future__ import annotations

import argparse

from tinysm.commands import check_output_file, check_output_folder

HELP = "paint ignore/uncertain regions with their mean colour and write the erased images (docs/reference.md §1.2)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("annotations", help="annotation JSON with ignore/uncertain flags")
    parser.add_argument("image_root", help="folder the file_name entries are relative to")
    parser.add_argument("out_root", help="folder to write erased images to (same relative names)")
    parser.add_argument("--annotations-out", help="also write the annotations without ignore/uncertain boxes")


def run(args: argparse.Namespace) -> int:
    from tinysm.data.annotations import load_annotations
    from tinysm.data.erase import write_erased_dataset

    check_output_folder(args.out_root, "OUT_ROOT")
    check_output_file(args.annotations_out, "--annotations-out")
    annotations = load_annotations(args.annotations, image_root=args.image_root, check_files=True)
    erased = write_erased_dataset(annotations, args.image_root, args.out_root, args.annotations_out)
    removed = len(annotations.annotations) - len(erased.annotations)
    print(f"{len(annotations.images)} images written to {args.out_root}; {removed} ignore/uncertain boxes erased")
    return 0
