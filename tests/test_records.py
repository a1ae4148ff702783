"""Record formats (as upstream `data_input.py`, `predict_label.py`, `filter_unlabel.py` and `proc_svhn.py` use them):
names, and the pseudo-label records we encode without building protobufs."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student_tf import file_names
from noisy_student_tf.data import records


def test_file_names_follow_the_spec():
    assert file_names.shard_name("extra", 3, 128) == "extra-00003-of-00128"
    assert file_names.prediction_name(3, 128, 1) == "train-info-00003-of-00128-00001"
    assert file_names.info_name(3, 128, 1) == "info-00003-of-00128-00001.txt"
    assert file_names.filtered_name(0, 17, 128) == "train-0-00017-of-00128"


@pytest.mark.parametrize("num_classes, label, image_size", [(10, 3, 5), (1000, 999, 300), (1, 0, 0), (200, 130, 70000)])
def test_pseudo_label_encoding_parses_like_a_built_example(num_classes, label, image_size):
    rng = np.random.default_rng(num_classes)
    image = rng.integers(0, 256, image_size, dtype=np.uint8).tobytes()
    probabilities = rng.random(num_classes).astype(np.float32)
    prob = probabilities[label]
    encoded = records.PseudoLabelEncoder(num_classes).encode(
        image, label, prob.astype("<f4").tobytes(), probabilities.astype("<f4").tobytes())
    built = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "prob": tf.train.Feature(float_list=tf.train.FloatList(value=[prob])),
        "probabilities": tf.train.Feature(float_list=tf.train.FloatList(value=probabilities)),
    }))
    # Protobuf's own parser reads our bytes back into the same message ...
    assert tf.train.Example.FromString(encoded) == built
    # ... and TensorFlow's training-time parser (upstream `data_input.py`, `unl_dst_parser`) gets the same values.
    parsed = tf.io.parse_single_example(encoded, records.unlabeled_features(num_classes))
    assert parsed["image/encoded"].numpy() == image
    assert int(parsed["label"]) == label and parsed["prob"].numpy() == prob
    np.testing.assert_array_equal(parsed["probabilities"].numpy(), probabilities)


@pytest.mark.parametrize("records_in_file, replicas", [(0, 3), (1, 3), (7, 1), (7, 3), (9, 3), (10, 4)])
def test_replica_counts_from_one_read_equal_each_replicas_own_count(tmp_path, records_in_file, replicas):
    from noisy_student_tf.offline import shard_io

    path = str(tmp_path / "train-00000-of-00001")
    records.write_records(path, (records.labeled_example(b"x", 1) for _ in range(records_in_file)))
    expected = [shard_io.count_records(path, total_replicas=replicas, worker_id=w) for w in range(replicas)]
    assert shard_io.replica_counts(path, replicas) == expected and sum(expected) == records_in_file
