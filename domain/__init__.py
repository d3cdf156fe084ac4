"""Pure rules that agents and pipelines share: keys, sanitizing, theme checks, contrast, CSS.

No I/O: nothing here talks to Redis, the object store or the network.
"""
