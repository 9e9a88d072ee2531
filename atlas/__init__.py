"""Atlas: local-first data maps for text datasets.

From Python (each name is loaded on first use, so ``import atlas`` stays instant):

>>> import atlas
>>> m = atlas.build(df, text="prompt")    # or atlas.open("my_map")
>>> m.topics                               # a DataFrame: one row per topic
>>> m.remove(topic=12, reason="junk"); m.remove(duplicates=True)
>>> clean = m.export()                     # the kept records, as a DataFrame

See `atlas.api` for the whole API.
"""

__version__ = "0.1.0"
__all__ = ["Map", "build", "open"]


def __getattr__(name: str):
    if name in __all__:
        from atlas import api

        return getattr(api, name)
    raise AttributeError(f"module 'atlas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
