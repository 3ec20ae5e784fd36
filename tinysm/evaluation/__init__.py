"""TinyPerson evaluation: AP and MR exactly per reference §6, vectorised.

Detections (results files) and the tile merge (reference §2.3) live in `tinysm.data`.
"""
from tinysm.evaluation.evaluator import evaluate_tiny
from tinysm.evaluation.result import TinyResult

__all__ = ["TinyResult", "evaluate_tiny"]
