"""`tinysm sizes`: object-size statistics of annotation files and their size histograms (reference §3)."""
from __future__ import annotations

import argparse

from tinysm.commands import check_output_folder

HELP = "print object-size statistics of COCO-format files and write their size histograms (docs/reference.md §3)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="annotation JSON of the target (tiny) dataset")
    parser.add_argument("--source", help="annotation JSON of an external dataset to compare with")
    parser.add_argument("--bins", type=int, default=100, help="histogram bins K (default 100)")
    parser.add_argument("--tail-rate", type=float, default=None,
                        help="share of sizes in the two tail bins (default 2/K; 0: no tail bins)")
    parser.add_argument("--log-bins", action="store_true", help="equal-width bins in log size")
    parser.add_argument("--out", help="folder to write <file stem>.sizes.json (statistics + histogram) and "
                                      "sizes.png (the size distributions; with --source, also after each "
                                      "size-matching method) into")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tinysm.data.annotations import load_annotations
    from tinysm.io import atomic_write_json
    from tinysm.plots.results import save_figure
    from tinysm.scale_match import SizeDistribution
    from tinysm.experiments.size_stats import size_statistics, statistics_table

    if args.bins < 1:
        raise ValueError(f"--bins must be a positive integer, got {args.bins}")
    check_output_folder(args.out, "--out")
    paths = [Path(p) for p in (args.target, args.source) if p is not None]
    if len(paths) == 2 and paths[0].stem == paths[1].stem:
        raise ValueError(f"target and source are both named '{paths[0].stem}': their rows and "
                         f"{paths[0].stem}.sizes.json would collide; rename one")
    loaded = {path: load_annotations(path) for path in paths}
    records = {}
    for path, annotations in loaded.items():
        histogram = SizeDistribution.from_coco(annotations, args.bins, args.tail_rate, args.log_bins)
        records[path] = {"file": str(path), "statistics": size_statistics(annotations),
                         "histogram": {"bins": args.bins, "tail_rate": args.tail_rate, "log_bins": args.log_bins,
                                       **histogram.to_dict()}}
    table = statistics_table({path.name: annotations for path, annotations in loaded.items()})
    print(table.to_string())
    if args.out is not None:
        for path, record in records.items():
            written = atomic_write_json(Path(args.out) / f"{path.stem}.sizes.json", record)
            print(f"wrote {written}")
        print(f"wrote {save_figure(size_figure(list(loaded.values()), args.bins), Path(args.out) / 'sizes.png')}")
    return 0


def size_figure(files: list, bins: int):
    """The target's sizes against the source's before and after each size-matching method (reference
    §4, §5), or the target alone when there is no source."""
    from tinysm.experiments.size_stats import scale_matched_sets, size_panels
    from tinysm.plots.sizes import plot_size_distributions
    from tinysm.scale_match import object_sizes

    target = files[0]
    if len(files) == 1:
        return plot_size_distributions(object_sizes(target), object_sizes(target), {}, source_name="target")
    return plot_size_distributions(*size_panels(scale_matched_sets(target, files[1], bins)))
