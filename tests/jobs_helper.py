"""Runs the real jobs in-process from their configs (noisy_student_tf/config.py), with the tiny network every
small test shares.

Configs are changed with keyword arguments whose `__` separates nesting: `optim__train_steps=30` is
`dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, train_steps=30))`. The defaults are main.py's.
"""

import dataclasses

from noisy_student_tf.config import (EvalConfig, ExportConfig, InputConfig, ModelConfig, OptimConfig,
                                     PredictConfig, RobustnessConfig, TeacherConfig, TrainConfig)
from noisy_student_tf.tasks import get_task

IMAGENET, SVHN = get_task("imagenet"), get_task("svhn")
# 16x16 images on the small-image path, 10 classes, a tiny EfficientNet (one block per stage, 8-channel stem),
# ImageNet normalisation, float32 on CPU.
TINY_SIZE = 16
TINY = ModelConfig("efficientnet-b0", 10, TINY_SIZE, small_image_model=True, width_coefficient=0.25,
                   depth_coefficient=0.25)
# The same tiny network on the SVHN task (32x32, 10 classes, SVHN normalisation, no flips).
TINY_SVHN = dataclasses.replace(TINY, image_size=32)
# TINY as main.py's flags, for the real scripts run in a subprocess (they test the command line end to end) and
# for tests of the command line's adapter.
TINY_FLAGS = ["--task_name=imagenet", "--small_image_model", "--input_image_size=16", "--num_label_classes=10",
              "--model_name=efficientnet-b0", "--width_coefficient=0.25", "--depth_coefficient=0.25",
              "--use_tpu=False", "--use_bfloat16=False"]


def changed(cfg, **changes):
    """`cfg` with `changes` applied; `part__field=value` changes a field of a nested config."""
    direct, nested = {}, {}
    for key, value in changes.items():
        head, _, rest = key.partition("__")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[key] = value
    for head, inner in nested.items():
        direct[head] = changed(direct.get(head, getattr(cfg, head)), **inner)
    return dataclasses.replace(cfg, **direct)


def teacher(model_name="efficientnet-b0", checkpoint=None, softmax_temp=-1.0, image_size=None) -> TeacherConfig:
    """An online teacher of the tiny network's input size (small-image models read the student's size)."""
    return TeacherConfig(model_name=model_name, checkpoint=None if checkpoint is None else str(checkpoint),
                         image_size=image_size or TINY_SIZE, softmax_temp=softmax_temp)


def train_config(model_dir, label_data_dir, *, svhn=False, **changes) -> TrainConfig:
    task = SVHN if svhn else IMAGENET
    cfg = TrainConfig(model_dir=str(model_dir), task=task, model=TINY_SVHN if svhn else TINY,
                      input=InputConfig(label_data_dir=str(label_data_dir)), optim=OptimConfig())
    return changed(cfg, **changes)


def eval_config(model_dir, label_data_dir, *, svhn=False, robustness=None, **changes) -> EvalConfig:
    cfg = EvalConfig(model_dir=str(model_dir), label_data_dir=str(label_data_dir), task=SVHN if svhn else IMAGENET,
                     model=TINY_SVHN if svhn else TINY,
                     robustness=None if robustness is None else RobustnessConfig(**robustness))
    return changed(cfg, **changes)


def predict_config(checkpoint, input_dir, output_dir, *, svhn=False, **changes) -> PredictConfig:
    cfg = PredictConfig(checkpoint=str(checkpoint), input_dir=str(input_dir), output_dir=str(output_dir),
                        task=SVHN if svhn else IMAGENET, model=TINY_SVHN if svhn else TINY)
    return changed(cfg, **changes)


def export_config(checkpoint, output, **changes) -> ExportConfig:
    cfg = ExportConfig(checkpoint=str(checkpoint), output=str(output), task=IMAGENET, model=TINY,
                       task_name=IMAGENET.name)
    return changed(cfg, **changes)


def filter_config(**fields):
    from noisy_student_tf.config import FilterConfig

    return FilterConfig(**{k: str(v) if k.endswith("_dir") else v for k, v in fields.items()})


def train_job(model_dir, label_data_dir, **changes):
    from noisy_student_tf.jobs import train

    return train.run(train_config(model_dir, label_data_dir, **changes))


def eval_job(model_dir, label_data_dir, **changes):
    from noisy_student_tf.jobs import evaluate

    return evaluate.run(eval_config(model_dir, label_data_dir, **changes))


def predict_job(checkpoint, input_dir, output_dir, **changes):
    from noisy_student_tf.jobs import predict

    return predict.run(predict_config(checkpoint, input_dir, output_dir, **changes))


def filter_job(**fields):
    from noisy_student_tf.jobs import filter_unlabel

    return filter_unlabel.run(filter_config(**fields))


def export_job(checkpoint, output, **changes):
    from noisy_student_tf.jobs import export

    return export.run(export_config(checkpoint, output, **changes))
