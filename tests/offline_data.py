"""Crafted inputs of the offline stages, written by hand from the formats of upstream
`predict_label.py`, `run_prediction` and `get_num_image` (not by our tools)."""

import json
import os

import numpy as np
import tensorflow as tf

import tiny_data


def example(**features) -> bytes:
    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        if isinstance(value, (int, np.integer)):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        return tf.train.Feature(float_list=tf.train.FloatList(value=list(np.ravel(value))))

    return tf.train.Example(features=tf.train.Features(
        feature={k.replace("__", "/"): feature(v) for k, v in features.items()})).SerializeToString()


def write(path, serialized):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for record in serialized:
            writer.write(record)


def write_image_shard(path, labels, seed=0, size=16):
    """Unlabeled shard as upstream `proc_svhn.py`, `save_tfrecord`, writes `extra`: JPEG, dummy teacher fields,
    true label + 1."""
    images = tiny_data.class_images(labels, np.random.RandomState(seed), size)
    write(path, (example(image__encoded=tiny_data.jpeg(img), probabilities=np.zeros(10, np.float32), label=0,
                         prob=np.float32(0), image__class__label=int(y) + 1) for img, y in zip(images, labels)))


def write_predictions(root, shard, num_shards, probabilities, worker=0):
    """Upstream predict output (`predict_label.py`, `run_prediction`) and info file (`get_num_image`) for one shard
    and worker."""
    probabilities = np.asarray(probabilities, np.float32)
    write(os.path.join(root, "predict_label", "train-info-%05d-of-%05d-%05d" % (shard, num_shards, worker)),
          (example(probabilities=p, classes=int(np.argmax(p))) for p in probabilities))
    os.makedirs(os.path.join(root, "info"), exist_ok=True)
    with open(os.path.join(root, "info", "info-%05d-of-%05d-%05d.txt" % (shard, num_shards, worker)), "w") as f:
        json.dump({"image_num": len(probabilities)}, f)


def confident_probabilities(labels, confidences, num_classes=10):
    """Rows whose argmax is `labels` with top-1 probability `confidences`, the rest spread evenly."""
    rows = np.zeros((len(labels), num_classes), np.float32)
    for row, label, conf in zip(rows, labels, confidences):
        row[:] = (1.0 - conf) / (num_classes - 1)
        row[label] = conf
    return rows


def read_records(path, features):
    return [tf.io.parse_single_example(r, features) for r in tf.data.TFRecordDataset(path)]
