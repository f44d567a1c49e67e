"""Results of commands: plain text for a terminal, HTML for a notebook (`_repr_html_`), JSON-able data."""
from __future__ import annotations

import html
from collections.abc import Sequence


class Message:
    """One or more lines of text."""

    def __init__(self, text: str, data=None):
        self.text = text
        self.data = data

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"


class Table:
    """Rows under column headings; `title` is printed above."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence], title: str = "", data=None,
                 empty: str = "(none)"):
        self.columns = list(columns)
        self.rows = [["" if v is None else str(v) for v in row] for row in rows]
        self.title = title
        self.data = data
        self.empty = empty

    def __str__(self) -> str:
        lines = [self.title] if self.title else []
        if not self.rows:
            return "\n".join(lines + [self.empty])
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)]
        fmt = lambda row: "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()  # noqa: E731
        lines += [fmt(self.columns), fmt(["-" * w for w in widths])] + [fmt(r) for r in self.rows]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        title = f"<b>{html.escape(self.title)}</b>" if self.title else ""
        if not self.rows:
            return f"{title}<p>{html.escape(self.empty)}</p>"
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(v)}</td>" for v in r) + "</tr>"
            for r in self.rows
        )
        return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def details(title: str, fields: dict, data=None) -> Table:
    """A two-column table of field: value, for one object."""
    return Table(["field", "value"], [[k, v] for k, v in fields.items()], title=title, data=data)
