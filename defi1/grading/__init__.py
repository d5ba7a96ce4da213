"""Grading students' submissions: the machinery behind ``defi1 collect``.

* :mod:`defi1.grading.archive`: reading an untrusted submission (folder or zip) within limits;
* :mod:`defi1.grading.model_files`: checking a submitted model file before anything loads it;
* :mod:`defi1.grading.isolation`: running a command in a child process with a time and a memory limit;
* :mod:`defi1.grading.worker`: the child process that rescores one student's models on the instructor's data;
* :mod:`defi1.grading.rescore`: rescoring a whole class, one isolated worker per student, resumable;
* :mod:`defi1.grading.table`: the grades table (CSV) and the Markdown summary.

:mod:`defi1.collect` reads the submissions and ties these together.
"""
