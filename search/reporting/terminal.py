"""Tables on the terminal (rich): the ranking after a search, the candidates of a plan."""

from __future__ import annotations

import pandas as pd
from rich.markup import escape
from rich.table import Table


def rich_table(frame: pd.DataFrame, title: str) -> Table:
    """Values are shown as written: a `[...]` in a name or value is text, not rich markup."""
    table = Table(title=escape(title))
    for column in frame.columns:
        table.add_column(escape(str(column)), justify="right" if frame[column].dtype.kind in "if" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(escape(_cell(value)) for value in row))
    return table


def _cell(value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1e9:  # a proxy score (synflow grows with depth past 1e60): its size, not 60 digits
            return f"{value:.4g}"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
