"""The ``nudgelab`` command line: generate, ingest, build, anomalies, incidents, experiments, dispatch, serve.

Every command has ``--help``; failures exit non-zero with one line saying what went wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nudgelab.dispatch_cmd import DispatchCliError
from warehouse.lock import WarehouseBusy
from warehouse.publish import PublishError
from warehouse.settings import load_settings
from warehouse.storage import StorageError

BUSY = 4  # another step holds the warehouse: nothing was changed, try again (every command)


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit status 2."""


def _cmd_generate(args: argparse.Namespace) -> int:
    from ingest.generator import generate

    if args.users < 1 or args.days < 1:
        raise CliError("--users and --days must be at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    truth = generate(out, users=args.users, days=args.days, seed=args.seed, fmt=args.format, progress=_step)
    total = sum(truth["rows_written"].values())
    print(f"wrote {total:,} records to {out} ({args.format}); ground truth in {out / 'ground_truth.json'}")
    return 0


def _lake_target(args: argparse.Namespace) -> Path | None:
    """``--to warehouse`` (the default) or ``--to lake DIR``; words after DIR are PATHs."""
    words = args.to or ["warehouse"]
    if words[0] == "warehouse" and len(words) == 1:
        return None
    if words[0] == "lake" and len(words) >= 2:
        args.paths = [*words[2:], *args.paths]
        return Path(words[1])
    raise CliError("--to takes `warehouse` or `lake DIR`")


def _step(line: str) -> None:
    print(f"  · {line}", file=sys.stderr, flush=True)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.runner import run_ingest

    settings = load_settings()
    lake = _lake_target(args)
    if not args.paths and not args.spool:
        raise CliError("give at least one PATH, or --spool to drain the spool")
    from ingest.readers.base import ReaderError
    from warehouse.settings import MissingHashKey

    try:
        summary = run_ingest(
            settings,
            [Path(p) for p in args.paths],
            fmt=args.format,
            event_type=args.type,
            timezone_name=args.timezone,
            spool=args.spool,
            show_progress=not args.json and sys.stderr.isatty() or args.progress,
            quiet=args.json,
            lake=lake,
        )
    except (ReaderError, MissingHashKey) as exc:
        raise CliError(str(exc)) from exc
    if not summary.batches and summary.errors:
        raise CliError(summary.errors[0])
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, default=str))
    else:
        from nudgelab.render import print_ingest_summary

        print_ingest_summary(summary)
    if summary.errors:
        return 1
    if any(not b.validation_success for b in summary.batches):
        failed = next(b for b in summary.batches if not b.validation_success)
        print(f"nudgelab: data expectations failed for batch {failed.batch_id} ({failed.source_file})", file=sys.stderr)
        return 3
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from nudgelab.pipeline import build

    settings = load_settings()

    def echo(line: str) -> None:
        if not args.quiet and line.strip():
            print(line, file=sys.stderr, flush=True)

    result = build(settings, full_refresh=args.full_refresh, select=args.select, echo=echo,
                   test_all_rows=args.test_all_rows, lake=Path(args.from_lake) if args.from_lake else None)
    if not result.success:
        raise CliError(f"build not published: {result.reason}")
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    print(f"published {result.snapshot} ({timings})")
    return 0


def _cmd_experiments_analyze(args: argparse.Namespace) -> int:
    from experiments.analyze import AnalysisError, analyze, parse_weights
    from experiments.bayesian import Prior
    from experiments.report_pages import to_html, to_markdown

    try:
        weights = parse_weights(args.weights) if args.weights else None
        prior = None
        if args.prior:
            mean, sep, sd = args.prior.partition(":")
            try:
                prior = Prior(float(mean), float(sd) ** 2, args.prior_scale) if sep and float(sd) > 0 else None
            except ValueError:
                prior = None
            if prior is None:
                raise CliError(f"--prior {args.prior!r} is not MEAN:SD with SD > 0 (a normal prior on the "
                               f"{args.prior_scale} effect)")
        report = analyze(
            args.input, variant_col=args.variant_col, control=args.control, metrics=args.metric or [],
            ratios=args.ratio or [], unit_col=args.unit_col, covariate=args.covariate, weights=weights,
            alpha=args.alpha, correction=args.correction, sequential=args.sequential, n_star=args.n_star,
            bayesian=args.bayesian, prior=prior, guardrails=args.guardrail or [], guardrail_margin=args.guardrail_margin,
            tests=args.test or [], as_analysis=args.format != "json",
        )
    except AnalysisError as exc:
        raise CliError(str(exc)) from exc
    if args.format == "json":
        print(json.dumps(report, indent=2, allow_nan=False, default=str))
    elif args.format == "md":
        print(to_markdown(report.as_page()), end="")
    else:
        print(to_html(report.as_page()), end="")
    return 0


def _cmd_experiments_report(args: argparse.Namespace) -> int:
    from experiments.warehouse_report import known_experiments, write_results
    from warehouse.connections import connect_build
    from warehouse.lock import warehouse_lock
    from warehouse.publish import audit_problem, publish

    if args.experiment_id and args.all:
        raise CliError("give an EXPERIMENT_ID or --all, not both")
    settings = load_settings()
    if not settings.warehouse_path.exists():
        raise CliError("the build database holds no audited build: run `nudgelab build`")
    with warehouse_lock(settings.home, "nudgelab experiments report"):
        conn = connect_build(settings)
        try:
            problem = audit_problem(conn)
            if problem:
                raise CliError(f"the build database holds no audited build ({problem}): run `nudgelab build`")
            known = known_experiments(conn)
            if args.experiment_id and args.experiment_id not in known:
                raise CliError(f"unknown experiment {args.experiment_id!r} (known: {', '.join(known) or 'none'})")
            summary = write_results(conn, settings, [args.experiment_id] if args.experiment_id else None)
            snapshot = publish(settings, conn)
        finally:
            conn.close()
    if args.json:
        print(json.dumps({**summary.as_dict(), "snapshot": str(snapshot)}, indent=2))
        return 0
    for exp in summary.experiments:
        print(f"{exp.experiment_id} (SRM {exp.srm_status}): {exp.verdict}")
        print(f"  report: {exp.html_path} · {exp.markdown_path}")
    print(f"wrote {summary.result_rows:,} rows to experiments.results ({len(summary.experiments)} experiment{'' if len(summary.experiments) == 1 else 's'}); "
          f"published {snapshot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nudgelab",
        description="Warehouse-native analytics and experimentation for reminder messaging. "
        "Everything a run writes lives under $NUDGELAB_HOME (default ./.nudgelab).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    gen = sub.add_parser("generate", help="write a realistic, seeded scenario (users, sends, receipts, clicks, ...)",
                         description="Write one file per event type plus ground_truth.json (what was planted).")
    gen.add_argument("--out", required=True, help="output folder")
    gen.add_argument("--users", type=int, default=20_000, help="number of users (default 20000)")
    gen.add_argument("--days", type=int, default=28, help="days of activity (default 28)")
    gen.add_argument("--seed", type=int, default=7, help="random seed; same seed, same files (default 7)")
    gen.add_argument("--format", choices=("csv", "jsonl", "parquet"), default="csv", help="file format (default csv)")
    gen.set_defaults(func=_cmd_generate)

    ing = sub.add_parser(
        "ingest",
        help="land files (or the spool) in the warehouse's raw layer",
        description="Each file is one batch and one transaction: rows are typed, validated, deduplicated and "
        "landed; rejected rows go to raw.quarantine with a reason; the batch is recorded in raw.ingest_batches.",
    )
    ing.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (walked recursively; .gz read transparently)")
    ing.add_argument("--type", help="event type of every file (default: from the file name, or an event_type column)")
    from ingest.detect import FORMATS

    ing.add_argument("--format", default="auto", choices=FORMATS,
                     help="source format (default: by extension and content; experiments.yml/.csv/.json are "
                     "experiment definitions)")
    ing.add_argument("--timezone", help="IANA zone of naive timestamps in the source (without it they are quarantined)")
    ing.add_argument("--spool", action="store_true", help="also drain $NUDGELAB_HOME/spool/")
    ing.add_argument("--to", nargs="+", metavar="TARGET",
                     help="`warehouse` (default: the raw tables of $NUDGELAB_HOME/warehouse.duckdb) or `lake DIR`: "
                     "the same events as Parquet under DIR, one folder per type, partitioned by event_date "
                     "(Hive style), with the ledger in DIR/_ledger and the quarantine in DIR/_quarantine")
    ing.add_argument("--json", action="store_true", help="print a JSON summary instead of a table")
    ing.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    ing.set_defaults(func=_cmd_ingest)

    bld = sub.add_parser(
        "build",
        help="dbt build the marts, audit them, and publish a read-only snapshot if everything passed",
        description="Write-audit-publish: a failing dbt test or mart expectation publishes nothing and "
        "leaves the previous snapshot for readers.",
    )
    bld.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    bld.add_argument("--select", help="dbt node selection (default: everything)")
    bld.add_argument("--from-lake", metavar="DIR",
                     help="read the raw layer from the lake at DIR (landed by `nudgelab ingest --to lake DIR`): "
                     "the warehouse's raw tables become views over its Parquet files, and stay so")
    bld.add_argument("--test-all-rows", action="store_true",
                     help="run the data tests on every row, not only on what arrived since the last build "
                     "(a full refresh always does)")
    bld.add_argument("--quiet", action="store_true", help="do not echo dbt's per-step lines")
    bld.set_defaults(func=_cmd_build)

    from nudgelab.anomalies_cmd import add_parser as add_anomalies_parser
    from nudgelab.dispatch_cmd import add_parser as add_dispatch_parser
    from nudgelab.incidents_cmd import add_parser as add_incidents_parser
    from nudgelab.serve_cmd import add_parser as add_serve_parser

    add_anomalies_parser(sub)
    add_incidents_parser(sub)
    add_dispatch_parser(sub)
    add_serve_parser(sub)

    exp = sub.add_parser("experiments", help="analyse experiments",
                         description="Experiment analysis with the stats engine (sufficient statistics per arm).")
    exp_sub = exp.add_subparsers(dest="experiments_command", metavar="SUBCOMMAND")
    exp_sub.required = True
    ana = exp_sub.add_parser(
        "analyze",
        help="analyse your own per-unit table (CSV or Parquet, one row per unit)",
        description="Sample-ratio check, then every goal metric of every variant against control: absolute and "
        "relative effects with intervals, p-values corrected over the family (goal metrics x variants). "
        "JSON on stdout by default.",
    )
    ana.add_argument("--input", required=True, metavar="FILE", help="CSV or Parquet file, one row per unit")
    ana.add_argument("--variant-col", required=True, metavar="COL", help="column naming each unit's arm")
    ana.add_argument("--control", required=True, metavar="NAME", help="the control arm's name in --variant-col")
    ana.add_argument("--metric", action="append", metavar="COL",
                     help="goal metric column (repeatable; booleans True/False, true/false or 0/1, or numbers)")
    ana.add_argument("--unit-col", metavar="COL", help="unit id; units appearing twice or in two arms are excluded")
    ana.add_argument("--ratio", action="append", metavar="NUM:DEN",
                     help="ratio goal metric: sum of NUM over sum of DEN per arm (repeatable)")
    ana.add_argument("--covariate", metavar="COL", help="pre-exposure covariate for CUPED (proportion and mean metrics)")
    ana.add_argument("--weights", metavar="A=0.5,B=0.5", help="planned split for the SRM check (default: equal)")
    ana.add_argument("--sequential", action="store_true", help="add always-valid intervals and p-values (daily looks)")
    ana.add_argument("--n-star", type=float, default=5000, help="sequential tuning sample size, both arms (default 5000)")
    ana.add_argument("--bayesian", action="store_true", help="add chance to win and expected loss (relative lift)")
    ana.add_argument("--prior", metavar="MEAN:SD", help="normal prior on the effect (default: flat)")
    ana.add_argument("--prior-scale", choices=("relative", "absolute"), default="relative",
                     help="the prior is on the relative lift (default) or on the absolute effect in the metric's "
                          "units; the Bayesian view follows it")
    ana.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    ana.add_argument("--correction", choices=("holm", "bh", "none"), default="holm",
                     help="multiple-testing correction over goal metrics x variants (default holm)")
    ana.add_argument("--guardrail", action="append", metavar="COL",
                     help="guardrail metric, outside the family, tested for non-inferiority (repeatable)")
    ana.add_argument("--guardrail-margin", type=float, default=0.02,
                     help="non-inferiority margin as a relative lift (default 0.02, i.e. 2 %%)")
    ana.add_argument("--test", action="append", metavar="METRIC:ALTERNATIVE[:MARGIN]",
                     help="the question a metric answers: two-sided (default), greater or less, against the relative "
                          "lift MARGIN under the null (click_through:greater; converted:greater:-0.01 is "
                          "non-inferiority at 1 %%); repeatable")
    ana.add_argument("--format", choices=("json", "md", "html"), default="json", help="output format (default json)")
    ana.set_defaults(func=_cmd_experiments_analyze)

    rep = exp_sub.add_parser(
        "report",
        help="analyse the warehouse's experiments: experiments.results and a report per experiment",
        description="Reads the audited build's marts.fct_experiment_stats, writes experiments.results (one row per "
        "experiment x variant x metric x analysis x dimension value) and NUDGELAB_HOME/reports/<experiment>.html "
        "and .md (verdict, sample ratio, metric tables, forest plot, confidence sequence over days, breakdowns, "
        "power so far, guardrails), then publishes the build so readers see the results. Refuses (exit 2) when "
        "the build database holds no audited build.",
    )
    rep.add_argument("experiment_id", nargs="?", metavar="EXPERIMENT_ID", help="one experiment (default: all)")
    rep.add_argument("--all", action="store_true", help="every experiment in the marts (the default)")
    rep.add_argument("--json", action="store_true", help="print a JSON summary instead of lines")
    rep.set_defaults(func=_cmd_experiments_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # everything a run writes under NUDGELAB_HOME is the user's alone (dbt's files too)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except WarehouseBusy as exc:
        print(f"nudgelab: {exc}", file=sys.stderr)
        return BUSY
    except DispatchCliError as exc:
        print(f"nudgelab: {exc}", file=sys.stderr)
        for line in exc.details:
            print(f"  {line}", file=sys.stderr)
        return exc.status
    except (CliError, StorageError, PublishError) as exc:
        print(f"nudgelab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nudgelab: interrupted; the batch in progress was rolled back", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line, not a traceback
        from ingest.readers.base import ReaderError

        kind = "" if isinstance(exc, (ReaderError, RuntimeError, ValueError, OSError)) else f"{type(exc).__name__}: "
        print(f"nudgelab: {kind}{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
