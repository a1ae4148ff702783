"""`export.py`: a trained student (EMA weights) as files for serving.

`--output` becomes a directory holding
* `model.keras`: the bare network (float32 logits), for plain `keras.saving.load_model(path)` (only built-in
  Keras layers: no need to import noisy_student_tf). Its input is the image normalised as in
  training, `(x - mean) / std` per channel in 0..255 units, at the size in export_info.json.
* `saved_model/`: a TF SavedModel whose signatures take raw images and do the eval preprocessing and the
  normalisation themselves:
    serving_default(image_bytes: string [N], encoded JPEG or PNG)
    serve_images(images: uint8 [N, H, W, 3]; exactly image_size x image_size for small-image models)
  both returning probabilities (float32 [N, C], softmax) and classes (int64 [N], argmax). Loading it needs
  TensorFlow only.
* `export_info.json`: model name, classes, image size, small_image_model, mean, std and the checkpoint.

The flags are main.py's (pass those the model was trained with) plus --output and --overwrite. The checkpoint
is --predict_ckpt_path when given (a model_dir, prefix or original TF1 checkpoint), else the latest one in
--model_dir. The export always computes in float32 (--use_bfloat16 and --mixed_precision are not used): the
checkpoint's weights are float32 whatever precision training ran in.
"""

from __future__ import annotations

import json
import os
import shutil

import keras
import tensorflow as tf
from absl import flags, logging

from noisy_student_tf.data import preprocessing
from noisy_student_tf.errors import UserError
# The temporary-name scheme of io_utils, so that exports' temporary directories are named and cleaned alike.
from noisy_student_tf.io_utils import _HOST, _TEMP, _alive, temp_path_for
from noisy_student_tf.jobs import settings as settings_lib
from noisy_student_tf.models import tf1_checkpoint
from noisy_student_tf.training import checkpoints
from noisy_student_tf.training.trainer import normalize

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
INFO_FILE = "export_info.json"


class ServingModule(tf.Module):
    """The network plus its eval preprocessing and normalisation, as the SavedModel's signatures."""

    def __init__(self, model: keras.Model, *, image_size: int, small_image_model: bool, mean, std):
        super().__init__(name="noisy_student_serving")
        # Only the weights are tracked: the Keras object graph (hundreds of layers and ops) would be walked and
        # recorded for nothing, since model.keras is the file for Keras. The functions capture the weights.
        self.weights = list(model.weights)
        mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        num_classes = model.output_shape[-1]

        def classify(images):
            def predict():
                logits = model(normalize(images, mean, std), training=False)
                probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
                return probabilities, tf.argmax(probabilities, axis=-1, output_type=tf.int64)

            # TF's conv2d returns an empty batch in the input's shape (the next op then fails), so an empty
            # request is answered here.
            probabilities, classes = tf.cond(
                tf.shape(images)[0] > 0, predict,
                lambda: (tf.zeros([0, num_classes], tf.float32), tf.zeros([0], tf.int64)))
            return {"probabilities": probabilities, "classes": classes}

        def preprocess_batch(inputs):
            # Exactly the clean view of eval and predict: bytes are decoded there (decode_jpeg also reads PNG),
            # ImageNet-style models get the centre crop + bicubic resize, small-image models the image as is.
            # Per image, because encoded images (and their crops) differ in size until they are resized.
            return tf.map_fn(
                lambda image: preprocessing.preprocess_image(image, is_training=False, image_size=image_size,
                                                             small_image_model=small_image_model),
                inputs, fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32))

        # No autograph (nothing here branches on tensors): it only slowed tracing down. The network is traced
        # once, in `classify`, and both signatures call that graph.
        classify = tf.function(classify, autograph=False, input_signature=[
            tf.TensorSpec([None, image_size, image_size, 3], tf.float32)])

        def serve_bytes(image_bytes):
            return classify(preprocess_batch(image_bytes))

        def serve_images(images):
            return classify(preprocess_batch(images))

        # Small-image models take the image as it is (no crop or resize), so the size is part of the
        # signature, where clients see it; ImageNet-style models take any size.
        side = image_size if small_image_model else None
        self.serve_bytes = tf.function(serve_bytes, autograph=False, input_signature=[
            tf.TensorSpec([None], tf.string, name="image_bytes")])
        self.serve_images = tf.function(serve_images, autograph=False, input_signature=[
            tf.TensorSpec([None, side, side, 3], tf.uint8, name="images")])


def checkpoint_path(F) -> tuple[str, str]:
    """(path, flag name): --predict_ckpt_path wins over --model_dir."""
    if F.predict_ckpt_path:
        return F.predict_ckpt_path, "--predict_ckpt_path"
    if F.model_dir:
        return F.model_dir, "--model_dir"
    raise UserError("--model_dir (or --predict_ckpt_path) is required: the checkpoint to export")


def check_output(output: str | None, overwrite: bool) -> str:
    if not output:
        raise UserError("--output is required: the directory to write model.keras, saved_model/ and "
                        "export_info.json into")
    output = os.path.abspath(output)
    if os.path.exists(output) and not os.path.isdir(output):
        raise UserError(f"--output={output} is a file: give the path of a directory to create")
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise UserError(f"--output={output} exists and is not empty: pass --overwrite to replace it, or choose "
                        "another directory")
    return output


def remove_dead_exports(output: str) -> None:
    """Deletes temporary siblings `.<name>.tmp-...` of `output` left by killed exports on this host."""
    parent, base = os.path.split(output)
    for name in os.listdir(parent):
        match = _TEMP.match(name)
        if (not name.startswith(f".{base}.tmp-") or not match or match["host"] != _HOST
                or int(match["pid"]) == os.getpid() or _alive(int(match["pid"]))):
            continue
        shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
        logging.info("removed %s, left by an interrupted export", name)


def build_model(settings, ckpt: str, flag: str, prefer_ema: bool) -> tuple[keras.Model, str]:
    # Serving in float32 whatever the training precision; the checkpoint's variables are float32.
    keras.mixed_precision.set_global_policy("float32")
    model = settings.model.build()
    description = checkpoints.load_inference_weights(model, ckpt, prefer_ema=prefer_ema, what=flag,
                                                     model_name=settings.model.model_name)
    return model, description


def export_info(F, settings, prefix: str, description: str) -> dict:
    model, task = settings.model, settings.task
    return {
        "model_name": model.model_name,
        "num_classes": model.num_classes,
        "image_size": model.image_size,
        "small_image_model": model.small_image_model,
        "width_coefficient": model.width_coefficient,
        "depth_coefficient": model.depth_coefficient,
        "task_name": F.task_name,
        "mean": list(task.mean),
        "std": list(task.std),
        "checkpoint": prefix,
        "weights": description,
        "keras_load": "keras.saving.load_model(path, compile=False) (built-in Keras layers only)",
        "keras_input": "float32 [N, image_size, image_size, 3] = (image - mean) / std, image in 0..255 (RGB)",
        "keras_output": "float32 logits [N, num_classes]",
        "saved_model_signatures": {
            "serving_default": "image_bytes: string [N] (JPEG or PNG) -> probabilities, classes",
            "serve_images": ("images: uint8 [N, image_size, image_size, 3]" if model.small_image_model else
                             "images: uint8 [N, H, W, 3], any size (centre crop + resize)")
            + " -> probabilities, classes",
        },
        "class_ids": "0-based output indices (TFRecord labels are 1-based on disk: class = label - 1)",
    }


def write_export(directory: str, model: keras.Model, settings, info: dict) -> None:
    os.makedirs(directory)
    model.save(os.path.join(directory, KERAS_FILE))
    module = ServingModule(model, image_size=settings.model.image_size,
                           small_image_model=settings.model.small_image_model,
                           mean=settings.task.mean, std=settings.task.std)
    tf.saved_model.save(module, os.path.join(directory, SAVED_MODEL_DIR),
                        signatures={"serving_default": module.serve_bytes, "serve_images": module.serve_images})
    with open(os.path.join(directory, INFO_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")


def move_into_place(tmp: str, output: str) -> None:
    """Renames the finished export to `output`; an old export there is only removed after that."""
    old = None
    if os.path.isdir(output):
        if os.listdir(output):
            old = temp_path_for(output)
            os.rename(output, old)
        else:
            os.rmdir(output)
    os.rename(tmp, output)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def run(F) -> str:
    """Exports the checkpoint the flags name; returns the output directory."""
    settings_lib.report_ignored_flags(F)
    output = check_output(F.output, F.overwrite)
    settings = settings_lib.resolve(F)
    ckpt, flag = checkpoint_path(F)
    model, description = build_model(settings, ckpt, flag, prefer_ema=F.moving_average_decay > 0)
    logging.info("exporting %s", description)
    prefix = tf1_checkpoint.resolve_checkpoint_path(ckpt)  # the checkpoint actually read, for the record
    prefix = prefix if "://" in prefix else os.path.abspath(prefix)
    info = export_info(F, settings, prefix, description)
    tmp = temp_path_for(output)  # a hidden sibling: same file system, so the final rename is atomic
    remove_dead_exports(output)
    try:
        write_export(tmp, model, settings, info)
        move_into_place(tmp, output)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    logging.info("wrote %s (%s, %d classes, %dx%d input)", output, settings.model.model_name,
                 settings.model.num_classes, settings.model.image_size, settings.model.image_size)
    return output


def main(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags are written --name=value")
    run(flags.FLAGS)
