"""Tables: CSV through pandas, GitHub-flavoured markdown."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence


def fmt_value(v, digits: int = 4) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None, digits: int = 4,
                   headers: dict | None = None) -> str:
    """A GitHub-flavoured markdown table of ``rows`` (dicts); numbers right-aligned."""
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0].keys())
    headers = headers or {}
    head = "| " + " | ".join(headers.get(c, c) for c in columns) + " |"
    numeric = [all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows) for c in columns]
    sep = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    body = ["| " + " | ".join(fmt_value(r.get(c), digits) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body]) + "\n"


def write_csv(path: str | os.PathLike, rows: Iterable[dict], columns: Sequence[str] | None = None) -> Path:
    import pandas as pd

    rows = list(rows)
    frame = pd.DataFrame(rows) if rows or columns is None else pd.DataFrame(columns=list(columns))
    if columns is not None:
        frame = frame[list(columns)]
    path = Path(path)
    frame.to_csv(path, index=False, float_format="%.6g")  # 6 significant digits: exact enough, half the size
    return path
