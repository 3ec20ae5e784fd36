"""Every figure and table the notebooks render: `tinysm.plots.sizes` (size distributions, reference §3–§5)
and `tinysm.plots.results` (training curves, PR and MR–FPPI curves, detections, result tables)."""
