"""The notebook-facing layer: params files -> experiment configs -> engine stages -> run records,
and what the notebooks show and tabulate (docs/architecture.md).

- `config`: `ExperimentConfig` (its defaults are the paper's recipe), params files as a base plus
  one short file per row, `PAPER_ROWS`, and the notebooks' parameter configs;
- `stages`: the one place an experiment becomes the engine's `TrainConfig`s;
- `run`: one experiment, pre-training -> fine-tuning -> tiled evaluation, into `runs/<set>/<row>/`;
- `views`: what the experiment notebook draws; `results_table`: the table of finished runs;
  `study`: the synthetic CPU study (per-seed gain over no pre-training beside the paper's);
- `size_stats`: object-size statistics before and after size matching;
- `reproduce`, `reproduce_data`: `tinysm reproduce`, its data step and its notebook jobs.
"""
