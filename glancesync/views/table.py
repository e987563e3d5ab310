"""The status matrix on a terminal (``--show-status --format table``), with rich.

Images are rows, regions columns, one :attr:`~glancesync.plan.Status.symbol`
per cell, coloured by the status's category on a terminal (never
otherwise; ``NO_COLOR`` honoured by rich), and a legend of the symbols
used. With more regions than fit as named columns, the columns are
numbered and a key below names them. Every name is shown through
:func:`~glancesync.safenames.printable` and escaped for rich's markup.
"""
from __future__ import annotations

import io
import os
from typing import Mapping

from rich.console import Console
from rich.table import Table
from rich.text import Text

from glancesync.plan import RegionPlan, StatusCategory
from glancesync.safenames import printable
from glancesync.throughput import Estimate
from glancesync.views import matrix as matrix_mod

#: Colour of each category.
STYLES = {
    StatusCategory.OK: "green",
    StatusCategory.PENDING: "yellow",
    StatusCategory.NEEDS_OPERATOR: "bold red",
    StatusCategory.INFO: "cyan",
}

#: Longest image name shown in full; longer ones are cut with an ellipsis.
NAME_WIDTH = 40

#: Region headers longer than this, or more regions than fit, become numbers.
HEADER_WIDTH = 16

#: The target whose regions are shown by their bare name.
MASTER_PREFIX = "master:"


def header(region: str) -> str:
    """A region's column header: ``Region`` for ``master:Region``, else ``target:Region``."""
    return _text(region.removeprefix(MASTER_PREFIX))


def _text(value: object, limit: int | None = None) -> str:
    """``value`` printable (control characters escaped), cut to ``limit``."""
    shown = printable(str(value))
    if limit and len(shown) > limit:
        shown = shown[:limit - 1] + "…"
    return shown


def render(plans: Mapping[str, RegionPlan], failures: Mapping[str, object] = (), *,
           estimates: Mapping[str, Estimate] | None = None, color: bool = False,
           width: int = 80, title: str | None = None) -> str:
    """The matrix of ``plans`` as text for a terminal ``width`` columns wide.

    ``color``: ANSI colours and bold (a terminal), unless ``NO_COLOR`` is set
    (then plain text, as without ``color``). Regions are
    named columns when they fit, else numbered (a key below names them);
    more columns than fit are split into several tables.
    """
    grid = matrix_mod.build(plans, failures)
    color = color and not os.environ.get("NO_COLOR")
    width = max(width, 40)
    longest = max([len(_text(n)) for n in grid.images] + [5])
    cell_width = max([len(matrix_mod.symbols(c)) for c in grid.cells.values()] + [1])
    header_width = max([len(header(r)) for r in grid.regions] + [1])
    name_width = min(NAME_WIDTH, longest)
    # A column costs its width plus 3 (border and padding), the image column 4.
    named = (header_width <= HEADER_WIDTH and len(grid.regions)
             * (max(header_width, cell_width) + 3) <= width - 4 - min(name_width, 20))
    column = max(header_width, cell_width) if named else max(len(str(len(grid.regions))),
                                                             cell_width)
    per_table = max(1, (width - 4 - min(name_width, 20)) // (column + 3))
    name_width = max(5, min(name_width, width - 4 - min(per_table, len(grid.regions) or 1)
                            * (column + 3)))
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=color, no_color=not color,
                      color_system="standard" if color else None, highlight=False,
                      emoji=False, markup=False, soft_wrap=False)
    numbers = {region: index for index, region in enumerate(grid.regions, 1)}
    chunks = [grid.regions[i:i + per_table]
              for i in range(0, len(grid.regions), per_table)] or [[]]
    for chunk in chunks:
        console.print(_table(grid, chunk, numbers, named, name_width,
                             title if chunk is chunks[0] else None))
    if not named:
        for region, index in numbers.items():
            console.print(Text(f"{index:>3}  {_text(region)}"))
    console.print(Text("legend:", style="bold"))
    entries = [(status.symbol, status.value, STYLES[status.category])
               for status in grid.used_statuses()]
    entries.append((matrix_mod.NOT_SYNCHRONISED, "not synchronised to the region", "dim"))
    for symbol, meaning, style in entries:
        line = Text("  ")
        line.append(symbol, style=style)
        line.append(f"  {meaning}")
        console.print(line)
    for region, error in sorted(grid.failures.items()):
        console.print(Text(f"{_text(region)}: FAILED: {_text(error, 300)}", style="red"))
    for region, estimate in sorted((estimates or {}).items()):
        if estimate.bytes:
            console.print(Text(f"{_text(region)}: {estimate.describe()}"))
    return out.getvalue()


def _table(grid: matrix_mod.Matrix, regions: list[str], numbers: Mapping[str, int],
           named: bool, name_width: int, title: str | None) -> Table:
    """One table of the matrix: the image column and the columns of ``regions``."""
    table = Table(title=Text(_text(title)) if title else None, header_style="bold")
    table.add_column("image", no_wrap=True, width=name_width, overflow="ellipsis")
    for region in regions:
        table.add_column(Text(header(region)) if named else str(numbers[region]),
                         justify="center", no_wrap=True)
    for image in grid.images:
        cells: list[Text] = [Text(_text(image, name_width))]
        for region in regions:
            statuses = grid.cell(image, region)
            category = matrix_mod.worst(statuses)
            cells.append(Text(matrix_mod.symbols(statuses),
                              style=STYLES[category] if category else "dim"))
        table.add_row(*cells)
    if any(region in grid.failures for region in regions):
        table.add_row(Text("(region failed)", style="bold red"),
                      *[Text("FAILED" if region in grid.failures else "", style="bold red")
                        for region in regions])
    return table
