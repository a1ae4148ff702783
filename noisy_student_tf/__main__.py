"""python -m noisy_student_tf <program> [flags]: the entry points of an installed package, by the names of the
top-level scripts (main, train, eval, predict, reassign, filter_unlabel, iterate, export, convert_checkpoint,
proc_svhn, prepro_digits, prepro_images)."""

from __future__ import annotations

import sys


def main(argv=None) -> None:
    from noisy_student_tf.cli import PROGRAMS

    argv = list(sys.argv if argv is None else argv)
    program = argv[1] if len(argv) > 1 else None
    if program not in PROGRAMS:
        problem = "no program given" if program is None else f"unknown program {program!r}"
        print(f"usage: python -m noisy_student_tf <program> [flags]\n{problem}; programs: {', '.join(PROGRAMS)}",
              file=sys.stderr)
        sys.exit(2)
    # absl parses sys.argv: the program's flags follow its name, which becomes argv[0] as a script's would.
    sys.argv = [f"{argv[0]} {program}"] + argv[2:]
    PROGRAMS[program]()


if __name__ == "__main__":
    main()
