"""Atlas: local-first data maps for text datasets."""
__version__ = "0.1.0"
