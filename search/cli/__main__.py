"""`python -m search.cli ...`: how a chief starts its local workers."""

from search.cli import app

app()
