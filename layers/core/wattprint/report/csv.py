"""GET /events as CSV: the same rows as the JSON form, one line per event. Pure (no I/O).

Named like the stdlib module it uses: this package's modules import absolutely, so `import csv` here is the
stdlib's.
"""

from __future__ import annotations

import csv
import io


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, list):
        return ";".join(map(repr, value))
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if isinstance(value, str) and text[:1] in _FORMULA_STARTS:
        return "'" + text  # a spreadsheet would run it as a formula (CSV injection); the JSON form is verbatim
    return text


_FORMULA_STARTS = frozenset("=+-@\t\r")


def to_csv(items: list[dict], keys: tuple[str, ...]) -> str:
    """A header line, then one line per event, in `keys` order (queries.EVENT_KEYS); lists as `;`-joined numbers, null as an empty
    cell, booleans as true/false, numbers exactly as in the JSON form."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(keys)
    for item in items:
        writer.writerow([_csv_cell(item[key]) for key in keys])
    return out.getvalue()
