"""Storefront themes: the section catalogue, deterministic checks, the CSS allowlist and the renderer.

Plain data in, plain data out: nothing here calls a model or knows an agent.
"""
