"""Convert an original TF1 EfficientNet checkpoint to a Keras model file, or back (--to_tf1).

  python convert_checkpoint.py --tf1_ckpt=ckpt/teacher_ckpt/model.ckpt --small_image_model --output=teacher.keras
  python convert_checkpoint.py --to_tf1 --keras_model=teacher.keras --output=ckpt/converted/model.ckpt-0
"""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.convert_checkpoint()
