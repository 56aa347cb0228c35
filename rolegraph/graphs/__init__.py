"""The reference systems, one module per graph: each has a State model, `build(runtime)` and `run(...)`."""
