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

import keras
import tensorflow as tf
from absl import logging

from noisy_student_tf import storage
from noisy_student_tf.data import preprocessing
from noisy_student_tf.errors import UserError
from noisy_student_tf.config import ExportConfig
from noisy_student_tf.models.restore import restore_model
from noisy_student_tf.models import require_model_name, tf1_checkpoint
from noisy_student_tf.models.inference import clean_logits

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
                probabilities = tf.nn.softmax(clean_logits(model, images, mean, std))
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


def check_output(output: str | None, overwrite: bool) -> str:
    if not output:
        raise UserError("--output is required: the directory to write model.keras, saved_model/ and "
                        "export_info.json into")
    output = storage.absolute(output)
    if storage.exists(output) and not storage.isdir(output):
        raise UserError(f"--output={output} is a file: give the path of a directory to create")
    if storage.isdir(output) and storage.listdir(output) and not overwrite:
        raise UserError(f"--output={output} exists and is not empty: pass --overwrite to replace it, or choose "
                        "another directory")
    return output


def remove_dead_exports(output: str) -> None:
    """Deletes temporary siblings `.<name>.tmp-...` of `output` left by killed exports on this host."""
    parent, base = storage.parent(output), storage.basename(output)
    if not storage.isdir(parent):
        return
    for name in storage.listdir(parent):
        if name.startswith(f".{base}.tmp-") and storage.is_dead_temporary(name):
            storage.remove_tree(storage.join(parent, name))
            logging.info("removed %s, left by an interrupted export", name)


def export_info(cfg: ExportConfig, prefix: str, description: str) -> dict:
    model, task = cfg.model, cfg.task
    return {
        "model_name": model.model_name,
        "num_classes": model.num_classes,
        "image_size": model.image_size,
        "small_image_model": model.small_image_model,
        "width_coefficient": model.width_coefficient,
        "depth_coefficient": model.depth_coefficient,
        "task_name": cfg.task_name or task.name,
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


def write_export(directory: str, model: keras.Model, cfg: ExportConfig, info: dict) -> None:
    """The three parts, export_info.json last: its presence marks a complete export."""
    storage.makedirs(directory)
    model.save(storage.join(directory, KERAS_FILE))
    module = ServingModule(model, image_size=cfg.model.image_size, small_image_model=cfg.model.small_image_model,
                           mean=cfg.task.mean, std=cfg.task.std)
    tf.saved_model.save(module, storage.join(directory, SAVED_MODEL_DIR),
                        signatures={"serving_default": module.serve_bytes, "serve_images": module.serve_images})
    storage.write_text(storage.join(directory, INFO_FILE), json.dumps(info, indent=2) + "\n")


def move_into_place(tmp: str, output: str) -> None:
    """Renames the finished export to `output` (on an object store file by file, export_info.json last); an
    old export there is only removed after that."""
    old = None
    if storage.isdir(output):
        if storage.listdir(output):
            old = storage.temp_path_for(output)
            storage.move_tree(output, old)
        else:
            storage.remove_tree(output)
    storage.move_tree(tmp, output, last=INFO_FILE)
    if old:
        storage.remove_tree(old)


def run(cfg: ExportConfig) -> str:
    """Exports the checkpoint `cfg` names; returns the output directory."""
    require_model_name(cfg.model.model_name)  # flags first, files after
    output = check_output(cfg.output, cfg.overwrite)
    # Serving in float32 whatever the training precision; the checkpoint's variables are float32.
    keras.mixed_precision.set_global_policy("float32")
    model, description = restore_model(cfg.model, cfg.checkpoint, use_ema=cfg.use_ema, what=cfg.checkpoint_flag)
    logging.info("exporting %s", description)
    prefix = tf1_checkpoint.resolve_checkpoint_path(cfg.checkpoint)  # the checkpoint actually read, for the record
    info = export_info(cfg, storage.absolute(prefix), description)
    tmp = storage.temp_path_for(output)  # a hidden sibling: same file system, so the final rename is atomic
    remove_dead_exports(output)
    try:
        write_export(tmp, model, cfg, info)
        move_into_place(tmp, output)
    finally:
        storage.remove_tree(tmp)
    logging.info("wrote %s (%s, %d classes, %dx%d input)", output, cfg.model.model_name,
                 cfg.model.num_classes, cfg.model.image_size, cfg.model.image_size)
    return output
