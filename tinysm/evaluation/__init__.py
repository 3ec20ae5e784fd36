"""TinyPerson evaluation: AP and MR exactly per SPEC §6, vectorised; tile-detection merge (SPEC §2.3)."""
from tinysm.data.merge import MergeConfig, merge_tile_detections, tile_offsets
from tinysm.evaluation.detections import Detections, load_detections
from tinysm.evaluation.evaluator import evaluate_tiny
from tinysm.evaluation.result import TinyResult

__all__ = ["Detections", "MergeConfig", "TinyResult", "evaluate_tiny", "load_detections",
           "merge_tile_detections", "tile_offsets"]
