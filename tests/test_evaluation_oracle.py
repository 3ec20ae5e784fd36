"""The vectorised evaluator against a plain-loop transcription of reference §6, on random messy cases.

The loops below follow reference §6.1-§6.3 sentence by sentence, one detection and one GT at a time,
the way the reference code is organised. Every number must agree exactly (same operations in the
same order), with and without the reference quirks, for several detection caps.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinysm.data.annotations import load_annotations
from tinysm.evaluation import evaluate_tiny
from tinysm.evaluation.protocol import AP_RANGES, FPPI_POINTS, MR_SETUPS, RECALL_THRESHOLDS, metric_key

EPS = np.spacing(1)


def overlap(d, g, over_detection: bool) -> float:
    iw = min(d[0] + d[2], g[0] + g[2]) - max(d[0], g[0])
    ih = min(d[1] + d[3], g[1] + g[3]) - max(d[1], g[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    d_area = d[2] * d[3]
    return inter / d_area if over_detection else inter / (d_area + g[2] * g[3] - inter)


def iod_formula(x: float, g_area: float, d_area: float) -> float:
    return x / (1 + x) * (1 + g_area / d_area)


def loop_ap(images, gts, dets, t, lo, hi, max_dets, quirks) -> float:
    pooled, n_regular = [], 0
    limit = min(t, 1 - 1e-10)
    for image in images:
        gt, dt = gts[image], dets[image]
        if not gt and not dt:
            continue
        ignored = [g["iscrowd"] or g["ignore"] or g["uncertain"] or not lo <= g["area"] <= hi for g in gt]
        order = [i for i in range(len(gt)) if not ignored[i]] + [i for i in range(len(gt)) if ignored[i]]
        n_regular += ignored.count(False)
        dt = sorted(dt, key=lambda d: -d["score"])[:max_dets]
        taken = set()
        for d in dt:
            best, best_overlap = None, limit
            for i in order:
                if i in taken and not gt[i]["iscrowd"]:
                    continue
                if best is not None and not ignored[best] and ignored[i]:
                    break
                value = overlap(d["bbox"], gt[i]["bbox"], gt[i]["iscrowd"])
                if value < best_overlap:
                    continue
                best, best_overlap = i, value
            d_area = d["bbox"][2] * d["bbox"][3]
            is_ignored = is_tp = False
            if best is None:
                candidates = [i for i in order if ignored[i]]
                if candidates and d_area > 0:
                    values = [iod_formula(overlap(d["bbox"], gt[i]["bbox"], gt[i]["iscrowd"]), gt[i]["area"], d_area)
                              for i in candidates]
                    if max(values) >= limit:
                        taken.add(candidates[values.index(max(values))])
                        is_ignored = True
            else:
                taken.add(best)
                if ignored[best]:
                    is_ignored = True
                else:
                    is_tp = not (quirks and gt[best]["id"] == 0)
            if not is_tp and not is_ignored and not lo <= d_area <= hi:
                is_ignored = True
            pooled.append((d["score"], is_tp, not is_tp and not is_ignored))
    if n_regular == 0:
        return -1.0
    pooled.sort(key=lambda entry: -entry[0])
    tp = fp = 0
    recall, precision = [], []
    for _, is_tp, is_fp in pooled:
        tp, fp = tp + is_tp, fp + is_fp
        recall.append(tp / n_regular)
        precision.append(tp / (fp + tp + EPS))
    for i in range(len(precision) - 1, 0, -1):
        precision[i - 1] = max(precision[i - 1], precision[i])
    samples = []
    for r in RECALL_THRESHOLDS:
        index = next((i for i, value in enumerate(recall) if value >= r), None)
        samples.append(0.0 if index is None else precision[index])
    return float(np.mean(samples)) * 100


def loop_mr(images, gts, dets, t, lo, hi, quirks) -> float:
    pooled, n_regular = [], 0
    limit = min(t, 1 - 1e-10)
    for image in images:
        gt = gts[image]
        size = [g.get("size", math.sqrt(g["area"])) for g in gt]
        ignored = [g["ignore"] or g["uncertain"] or not lo <= s <= hi for g, s in zip(gt, size)]
        order = [i for i in range(len(gt)) if not ignored[i]] + [i for i in range(len(gt)) if ignored[i]]
        n_regular += ignored.count(False)
        dt = sorted(dets[image], key=lambda d: -d["score"])[:1000]
        dt = [d for d in dt if lo / 1.25 <= math.sqrt(d["bbox"][2] * d["bbox"][3]) < hi * 1.25]
        taken = set()
        for d in dt:
            best, best_overlap = None, limit
            for i in order:
                if i in taken:
                    continue
                if best is not None and ignored[i]:
                    break
                value = overlap(d["bbox"], gt[i]["bbox"], ignored[i])
                if value < best_overlap:
                    continue
                best, best_overlap = i, value
            d_area = d["bbox"][2] * d["bbox"][3]
            if best is None:
                values = [iod_formula(overlap(d["bbox"], gt[i]["bbox"], True), gt[i]["area"], d_area)
                          for i in order if ignored[i]] if d_area > 0 else []
                is_ignored, is_tp = bool(values) and max(values) > 0.5, False
            elif ignored[best]:
                is_ignored, is_tp = True, False
            else:
                taken.add(best)
                is_ignored, is_tp = False, not (quirks and gt[best]["id"] == 0)
            pooled.append((d["score"], is_tp, not is_tp and not is_ignored))
    if n_regular == 0:
        return -1.0
    pooled.sort(key=lambda entry: -entry[0])
    tp = fp = 0
    recall, fppi = [], []
    for _, is_tp, is_fp in pooled:
        tp, fp = tp + is_tp, fp + is_fp
        recall.append(tp / n_regular)
        fppi.append(fp / len(images))
    read = []
    for point in FPPI_POINTS:
        index = max((i for i, value in enumerate(fppi) if value <= point), default=None)
        if index is not None:
            read.append(recall[index])
        else:
            read.append(recall[-1] if quirks and recall else 0.0)
    with np.errstate(divide="ignore"):
        return float(np.exp(np.mean(np.log(1 - np.array(read))))) * 100


def loop_metrics(gt_json, results, max_dets, thresholds, quirks) -> dict[str, float]:
    images = sorted(image["id"] for image in gt_json["images"])
    gts = {i: [a for a in gt_json["annotations"] if a["image_id"] == i] for i in images}
    dets = {i: [d for d in results if d["image_id"] == i] for i in images}
    out = {}
    for t in thresholds:
        for name, lo, hi in AP_RANGES:
            out[metric_key("AP", t, name)] = loop_ap(images, gts, dets, t, lo, hi, max_dets, quirks)
        for name, lo, hi in MR_SETUPS:
            out[metric_key("MR", t, name)] = loop_mr(images, gts, dets, t, lo, hi, quirks)
    return out


def random_case(seed: int):
    """A few images with tiny boxes, every flag, area ≠ w·h, id 0, score ties, duplicates, zero sizes."""
    rng = np.random.default_rng(seed)
    images = [{"id": int(i), "file_name": f"{i}.jpg", "width": 200, "height": 200}
              for i in rng.permutation(np.arange(7))]
    annotations, results = [], []
    ann_ids = iter(rng.permutation(60).tolist())          # id 0 lands on a random box
    for image in images[:6]:                              # the last image has no GT
        for _ in range(int(rng.integers(0, 9))):
            w, h = (float(v) for v in rng.choice([2, 3, 5, 7.5, 8, 10, 12, 15, 20, 30, 40], 2))
            x, y = (float(v) for v in rng.uniform(0, 150, 2))
            area = w * h if rng.random() < 0.7 else w * h * float(rng.choice([0.5, 0.8, 1.3]))
            ann = {"id": next(ann_ids), "image_id": image["id"], "category_id": 1, "bbox": [x, y, w, h],
                   "area": area, "iscrowd": int(rng.random() < 0.08), "ignore": bool(rng.random() < 0.15),
                   "uncertain": bool(rng.random() < 0.1)}
            if rng.random() < 0.1:
                ann["size"] = math.sqrt(w * h) * 1.1
            annotations.append(ann)
            for _ in range(int(rng.integers(0, 4))):
                jitter = rng.normal(0, 0.25, 4) * [w, h, w, h]
                results.append({"image_id": image["id"], "category_id": 1,
                                "bbox": [x + jitter[0], y + jitter[1], max(0.0, w + jitter[2]), max(0.0, h + jitter[3])],
                                "score": float(rng.choice([0.3, 0.5, 0.9])) if rng.random() < 0.3 else float(rng.random())})
    for image in images[1:]:
        for _ in range(int(rng.integers(0, 6))):
            x, y, w, h = (float(v) for v in rng.uniform(0, 40, 4))
            results.append({"image_id": image["id"], "category_id": 1, "bbox": [x * 4, y * 4, w, h],
                            "score": float(rng.random())})
    results = [results[i] for i in rng.permutation(len(results))]
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}, results


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_equals_the_loops(seed):
    gt_json, results = random_case(seed)
    gt = load_annotations(gt_json)
    for max_dets, quirks in ((1000, False), (1000, True), (3, False)):
        expected = loop_metrics(gt_json, results, max_dets, (0.25, 0.5, 0.75), quirks)
        got = evaluate_tiny(gt, results, max_dets=max_dets, reference_quirks=quirks).metrics
        assert got == expected, {k: (got[k], expected[k]) for k in got if got[k] != expected[k]}
