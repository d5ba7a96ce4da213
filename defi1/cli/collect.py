"""``defi1 collect``: gather students' ``results/*.json`` into a grades table and a Markdown summary."""

from __future__ import annotations

from pathlib import Path


def register(parser):
    parser.add_argument("submissions", nargs="+", metavar="DIR_OR_ZIP",
                        help="one student's folder or zip file (the student id is its name), or a folder of them")
    parser.add_argument("-o", "--output", default="grades.csv", help="grades table to write (CSV, one row per "
                        "student; default: grades.csv)")
    parser.add_argument("--summary", default=None, help="Markdown summary with distribution plots "
                        "(default: beside the CSV, <name>_summary.md)")
    parser.set_defaults(handler=run_collect)


def run_collect(arguments):
    from tqdm import tqdm

    from defi1.collect import collect_submissions, write_grades_csv, write_summary
    from defi1.files import ensure_output_dir

    output = Path(arguments.output)
    summary = Path(arguments.summary) if arguments.summary else output.with_name(f"{output.stem}_summary.md")
    ensure_output_dir(output.parent)  # fail before reading every submission, not after
    ensure_output_dir(summary.parent)
    submissions = collect_submissions(arguments.submissions,
                                      progress=lambda items: tqdm(items, desc="submissions", unit="student"))
    write_grades_csv(submissions, output)
    write_summary(submissions, summary)
    flagged = 0
    for submission in submissions:
        notes = submission.problems + submission.notebook_issues
        if submission.smoke_parts:
            notes.append("smoke-mode results: " + ", ".join(submission.smoke_parts))
        if notes:
            flagged += 1
            print(f"{submission.student}: " + "; ".join(notes))
    print(f"{len(submissions)} submission(s), {flagged} flagged; grades: {output}; summary: {summary}")
    return 0
