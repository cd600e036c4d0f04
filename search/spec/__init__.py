"""The space file: its schema, its reader, and the tables and genotypes it refers to. No framework import.

`load_space(path)` is the one way in; it returns a validated `Space` or raises `SpaceError`.
"""

from search.spec.reader import load_space
from search.spec.schema import Space

__all__ = ["Space", "load_space"]
