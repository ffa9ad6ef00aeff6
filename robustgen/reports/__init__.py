"""Reports: tables, figures, and the markdown reports of `attack` and `reproduce`."""
