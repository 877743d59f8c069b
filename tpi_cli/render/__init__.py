"""Renderers: each reads a result object and returns or prints text; none computes."""
