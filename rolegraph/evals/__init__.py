"""Benchmarks and their data: cases, loaders (MCQ so far)."""

from rolegraph.evals.mcq import MCQ, load_mcqs

__all__ = ["MCQ", "load_mcqs"]
