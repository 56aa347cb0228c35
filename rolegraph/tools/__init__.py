"""Typed tools the graphs call: video input (frames, descriptions, synthetic videos)."""
