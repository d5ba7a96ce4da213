"""``defi1 report``: the report skeleton, gathered from the notebooks' results files and figures."""

from __future__ import annotations


def register(parser):
    parser.add_argument("--results", default="results", help="folder of the results files the notebooks wrote "
                        "(default: results)")
    parser.add_argument("--runs", default=None, help="folder of the notebooks' runs and figures (default: runs "
                        "beside the results folder)")
    parser.add_argument("--out", default="report.md", help="Markdown report to write (default: report.md)")
    parser.add_argument("--force", action="store_true", help="replace a report you have already written in "
                        "(default: refuse; an untouched skeleton is always updated)")
    parser.set_defaults(handler=run_report)


def run_report(arguments):
    from defi1.report import write_report

    path = write_report(arguments.results, arguments.out, runs_dir=arguments.runs, force=arguments.force)
    print(f"report skeleton written: {path} (add your analysis under each 'Analysis' heading)")
    return 0
