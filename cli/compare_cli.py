"""`sweepctl compare NAME`: baseline, best OFAT move, best grid point, best Bayesian trial
and confirmed winner of one sweep, each with its interval and compute, in one table.

Why its own command: `status` answers "where is the sweep and what is best"; this answers
the question users wrote a table for by hand, "which stage's answer was worth what it
cost", and it reads the Optuna study, which `status` never does (it must stay fast).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console


def register(commands: Any) -> dict[str, Any]:
    compare = commands.add_parser(
        "compare", help="baseline vs each stage's best vs the confirmed winner, with compute"
    )
    compare.add_argument("name")
    compare.add_argument("--db", help="SQLAlchemy URL or SQLite path")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    return {"compare": cmd_compare}


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    """An unknown sweep or database is the store's StoreError: one line, exit 2 (main)."""
    from sweepctl.orchestrator.comparison import compare_sweep, comparison_table
    from sweepctl.storage import Store, resolve_db_url

    url = resolve_db_url(args.db)
    with Store(url, read_only=True) as store:
        comparison = compare_sweep(store, store.get_sweep(args.name), url)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2, default=str))
    else:
        console.print(comparison_table(comparison))
    return 0
