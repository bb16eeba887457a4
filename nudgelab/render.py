"""Human-readable output of CLI results (tables on the terminal)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ingest.loader import IngestSummary


def print_ingest_summary(summary: IngestSummary, console: Console | None = None) -> None:
    console = console or Console()
    data = summary.as_dict()
    table = Table(title="ingest summary", show_footer=True)
    table.add_column("type", footer="total")
    for name in ("rows_read", "loaded", "duplicates", "quarantined"):
        table.add_column(name.replace("_", " "), justify="right", footer=f"{data[name]:,}")
    for kind, counts in sorted(data["by_type"].items()):
        table.add_row(kind, *(f"{counts[n]:,}" for n in ("rows_read", "loaded", "duplicates", "quarantined")))
    console.print(table)
    failed = [b for b in summary.batches if not b.validation_success]
    checked = sum(len(b.validation) for b in summary.batches)
    if checked:
        if failed:
            for batch in failed:
                for suite in batch.validation:
                    for failure in suite.failures:
                        console.print(
                            f"[red]expectation failed[/red] {suite.table}: {failure['expectation']} "
                            f"on {failure['column']} ({failure['unexpected_count']} unexpected)"
                        )
        else:
            console.print(f"data expectations: {checked} suites passed on {len(summary.batches)} batches")
    for batch in summary.batches:
        if batch.note:
            console.print(f"{batch.source_file}: {batch.note}")
    for error in summary.errors:
        console.print(f"[red]error[/red] {error}")
