"""One command for the whole method: teacher, then N iterations of predict -> filter -> student -> eval.
See noisy_student_tf/jobs/iterate.py; `python iterate.py --help` lists the flags."""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.iterate()
