"""``defi1 collect``: gather students' ``results/*.json`` into a grades table and a Markdown summary, checking
each results file against the submitted model, and optionally rescoring every model on the instructor's data."""

from __future__ import annotations


def register(parser):
    parser.add_argument("submissions", nargs="+", metavar="DIR_OR_ZIP",
                        help="one student's folder or zip file (the student id is its name), or a folder of them")
    parser.add_argument("-o", "--output", default="grades.csv", help="grades table to write (CSV, one row per "
                        "student; default: grades.csv)")
    parser.add_argument("--summary", default=None, help="Markdown summary with distribution plots "
                        "(default: beside the CSV, <name>_summary.md)")
    rescoring = parser.add_argument_group("rescoring on the instructor's data (one isolated process per student)")
    rescoring.add_argument("--rescore-detection", metavar="HIDDEN.yaml", help="dataset YAML of held-out images: "
                           "measure each submitted detector's mAP50 and mAP50-95 on it")
    rescoring.add_argument("--split", default="test", choices=("train", "val", "test"),
                           help="split of HIDDEN.yaml to measure (default: test)")
    rescoring.add_argument("--rescore-classification", metavar="HIDDEN_DIR", help="class-per-folder images (or a "
                           "'defi1 data split' folder): measure each submitted classifier's test accuracy")
    rescoring.add_argument("--rescore-bench", action="store_true", help="re-run 'defi1 bench' on each detector on "
                           "this machine, so FPS compare across students (needs --jobs 1)")
    rescoring.add_argument("--bench-frames", type=int, default=50, help="frames timed per measurement (default 50)")
    rescoring.add_argument("--tolerance", type=float, default=0.1, help="flag a rescored accuracy or mAP that "
                           "differs from the reported one by more than this (default 0.1)")
    rescoring.add_argument("--time-limit", type=float, default=1800.0, metavar="SECONDS",
                           help="wall time allowed per student (default 1800)")
    rescoring.add_argument("--memory-limit-gb", type=float, default=8.0, metavar="GB",
                           help="memory allowed per student (default 8; 0: no limit)")
    rescoring.add_argument("--jobs", type=int, default=1, help="students rescored at once (default 1: one GPU)")
    rescoring.add_argument("--work-dir", default=None, help="rescoring state and logs; a rerun skips the students "
                           "finished there (default: beside the CSV, <name>_work/)")
    parser.set_defaults(handler=run_collect)


def run_collect(arguments):
    from tqdm import tqdm

    from defi1.collect import grade_submissions, summary_path
    from defi1.grading.rescore import RescoreSettings

    rescore = RescoreSettings(detection_data=arguments.rescore_detection, split=arguments.split,
                              classification_data=arguments.rescore_classification, bench=arguments.rescore_bench,
                              bench_frames=arguments.bench_frames, time_limit_s=arguments.time_limit,
                              memory_limit_bytes=int(arguments.memory_limit_gb * (1 << 30)), jobs=arguments.jobs)
    submissions = grade_submissions(arguments.submissions, output=arguments.output, summary=arguments.summary,
                                    rescore=rescore, tolerance=arguments.tolerance, work_dir=arguments.work_dir,
                                    progress=tqdm)
    flagged = 0
    for submission in submissions:
        notes = submission.problems + submission.notebook_issues
        if submission.smoke_parts:
            notes.append("smoke-mode results: " + ", ".join(submission.smoke_parts))
        if notes:
            flagged += 1
            print(f"{submission.student}: " + "; ".join(notes) + f" [{', '.join(submission.all_flags)}]")
    print(f"{len(submissions)} submission(s), {flagged} flagged; grades: {arguments.output}; summary: "
          f"{summary_path(arguments.output, arguments.summary)}")
    return 0
