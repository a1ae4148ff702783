"""Export a trained model (EMA weights) for serving: model.keras, a SavedModel and export_info.json.

  python export.py --model_dir=ckpt/student --output=export/student [the flags the model was trained with]

--predict_ckpt_path, when given, is exported instead of --model_dir's latest checkpoint.
"""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.export()
