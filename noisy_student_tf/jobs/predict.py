"""`--mode=predict` (spec §5.12) and `--reassign_label=True` (spec §7): label shards with a checkpoint's EMA
weights. Flags are main.py's: --predict_ckpt_path, --label_data_dir, --output_dir, --info_dir, --shard_id,
--num_shards, --total_replicas, --worker_id, --file_prefix."""

from __future__ import annotations

from absl import logging

from noisy_student_tf.errors import UserError
from noisy_student_tf.jobs import settings as settings_lib
from noisy_student_tf.offline import predict
from noisy_student_tf.training import checkpoints, strategy as strategy_lib


def config(F, settings) -> predict.PredictConfig:
    return predict.PredictConfig(
        input_dir=F.label_data_dir or "", output_dir=F.output_dir, info_dir=F.info_dir,
        file_prefix=F.file_prefix, num_shards=F.num_shards, num_classes=settings.model.num_classes,
        image_size=settings.model.image_size, small_image_model=settings.model.small_image_model,
        mean=settings.task.mean, std=settings.task.std, batch_size=F.predict_batch_size,
        total_replicas=F.total_replicas, worker_id=F.worker_id, seed=F.seed if F.seed is not None else 12345)


def run(F) -> dict:
    settings = settings_lib.resolve(F)
    if F.data_type != "tfrecord":
        raise UserError(f"--data_type={F.data_type!r}: only tfrecord is supported (as upstream)")
    cfg = config(F, settings)
    cfg.validate()
    shards = predict.parse_shard_ids(F.shard_id, F.num_shards)
    if not F.predict_ckpt_path:
        raise UserError("--predict_ckpt_path is required: the checkpoint (model_dir, prefix or original TF1 "
                        "checkpoint) whose predictions become the pseudo labels")
    strategy_lib.set_precision(F.use_bfloat16, F.mixed_precision)
    model = settings.model.build()
    description = checkpoints.load_inference_weights(model, F.predict_ckpt_path,
                                                     prefer_ema=F.moving_average_decay > 0, what="predict_ckpt_path",
                                                     model_name=settings.model.model_name)
    logging.info("%s with %s", "reassigning" if F.reassign_label else "predicting", description)
    return predict.run(predict.Classifier(model, cfg), cfg, shards, reassign=F.reassign_label)
