"""`probe report`, `probe status` and `probe figures`: what analyses and runs are shown as."""
from __future__ import annotations

import argparse

from probe.app.commands import arguments, command
from probe.app.flags import Choices, add_field, count, deprecated
from probe.errors import ConfigError

# The library is imported inside the functions: `probe --help` imports this module and must not load torch.


def _report_args(parser: argparse.ArgumentParser) -> None:
    from probe.reports.config import ReportConfig

    parser.add_argument("analyses", nargs="+", help="analysis folders written by `probe analyse`")
    add_field(parser, ReportConfig, "out", help="the report folder (replaced atomically)")
    add_field(parser, ReportConfig, "band_set", choices=Choices(_fixed_band_sets),
              help="band set of the overview profiles: %(choices)s")
    add_field(parser, ReportConfig, "attribution_method", type=str, help="the attribution method the pages show",
              default_help="the first analysed")
    add_field(parser, ReportConfig, "jobs", type=count, help="processes that draw the figures (1: in this one)",
              default_help="one per core, at most 4")


def _fixed_band_sets() -> tuple[str, ...]:
    from probe.analyses.bands import fixed_band_sets

    return fixed_band_sets()


@command("report", "write the HTML report (one page per classifier, by category, with audio) from analyses", order=100)
@arguments(_report_args)
def run_report(args: argparse.Namespace) -> int:
    """Build the HTML report and print where to open it."""
    from probe.reports.build import ReportConfig, build_report

    index = build_report(ReportConfig(tuple(args.analyses), args.out, args.band_set, args.attribution_method,
                                      jobs=args.jobs, progress=not args.quiet))
    print(f"probe report: open {index.resolve().as_uri()}")
    return 0


def _status_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", nargs="+", help="a grid's folder (or any folder of run directories, or one run)")
    parser.add_argument("--format", choices=["table", "json"], default="table",
                        help="a table, or one JSON object per run (default: table)")
    deprecated(parser, "--json", "--format json", dest="format", const="json")


@command("status", "where every run of a grid stands: state, epoch, best score, time per epoch, job id", order=110)
@arguments(_status_args)
def run_status(args: argparse.Namespace) -> int:
    """Print each folder's runs as a table or as JSON lines."""
    import json

    from probe.train.status import format_status, grid_status

    for folder in args.folders:
        rows = grid_status(folder)
        if args.format == "json":
            for row in rows:
                print(json.dumps(row))
        else:
            print(f"{folder}:\n{format_status(rows)}" if len(args.folders) > 1 else format_status(rows))
    return 0


def _figures_args(parser: argparse.ArgumentParser) -> None:
    from probe.reports.config import FIGURE_FORMATS

    parser.add_argument("analyses", nargs="+", help="analysis folders written by `probe analyse`")
    parser.add_argument("--out", default="figures", metavar="DIR", help="folder for the figure files (default: figures)")
    formats = Choices(lambda: FIGURE_FORMATS, multiple=True)
    parser.add_argument("--format", default=FIGURE_FORMATS, type=formats.parse, metavar="A,B,...", choices=formats,
                        help="the figure formats, comma-separated: %(choices)s (default: all)")


@command("figures", "write the comparison figures alone, sized for papers", order=120)
@arguments(_figures_args)
def run_figures(args: argparse.Namespace) -> int:
    """Write the paper figures in each requested format."""
    from probe.reports.config import FIGURE_FORMATS
    from probe.reports.paper import write_paper_figures

    formats = tuple(args.format)
    if not formats:
        raise ConfigError(None, f"--format takes one or more of {', '.join(FIGURE_FORMATS)}")
    written = write_paper_figures(list(args.analyses), args.out, formats)
    print(f"probe figures: wrote {len(written)} files to {args.out}")
    return 0
