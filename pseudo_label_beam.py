"""predict + filter_unlabel (or reassign) as one Apache Beam pipeline, on any runner:

  python pseudo_label_beam.py [main.py's flags for the teacher] [filter_unlabel.py's flags] \
      [Beam pipeline options, e.g. --runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing]
"""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.pseudo_label_beam()
