"""Environments and domain types the graphs act in: one module or folder per system (spin, being0,
mcq, videomind, lvas). Graphs and evals import these; nothing here imports graphs or evals."""
