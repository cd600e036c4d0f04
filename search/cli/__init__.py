"""The `archsearch` command line: parse, call the library, print. Heavy imports live inside commands,
so `--help`, `validate` and `schema` answer without loading TensorFlow."""

from search.cli import searching  # noqa: F401, I001 - registers its commands first: the order of --help
from search.cli import results  # noqa: F401
from search.cli import models  # noqa: F401
from search.cli.app import app

__all__ = ["app"]
