"""Every figure and table the notebooks render: `tinysm.plots.sizes` (size distributions, reference §3–§5),
`tinysm.plots.results` (training curves, PR and MR–FPPI curves, detections, result tables) and
`tinysm.plots.study` (the synthetic CPU study: AP50_tiny and its gain per pre-training arm)."""
