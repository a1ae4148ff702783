"""Every program of the package run twice in this one process, through its real flag adapter: once with every path on
local disk, once with every path on TensorFlow's in-memory filesystem (ram://, standing in for gs://: no local-file
call can reach it). Writes a JSON report comparing the two output trees (tests/test_storage_programs.py reads it).

    python tests/ram_programs.py LOCAL_ROOT REPORT.json

Run as its own process (a fork of tests/prewarmed.py's server): ram:// lives inside one process, and training
uses deterministic ops so that equal inputs give bit-equal checkpoints.
"""

import io
import json
import os
import sys
import tempfile
import zipfile

import h5py
import numpy as np
import scipy.io
import tensorflow as tf
from absl import flags
from PIL import Image

import jobs_helper
import tiny_data
from noisy_student_tf.cli import adapters
from noisy_student_tf import storage
from noisy_student_tf.cli.flags import (define_beam_flags, define_convert_checkpoint_flags, define_export_flags,
                                    define_filter_flags, define_main_flags, define_prepro_digits_flags,
                                    define_prepro_images_flags, define_proc_svhn_flags)

RAM_ROOT = "ram://noisy-student-tf/programs"
NUM_SHARDS = 2
TINY = jobs_helper.TINY_FLAGS + ["--deterministic"]


def parse(define, argv):
    values = flags.FlagValues()
    for d in define:
        d(values)
    values(argv)
    return values


def main_program(*args):
    adapters.run_main([], parse([define_main_flags], ["main.py", *TINY, *args]))


def filter_program(*args):
    return adapters.run_filter_unlabel([], parse([define_filter_flags], ["filter_unlabel.py", *args]))


def make_data(root):
    """Labeled train/dev/test and unlabeled extra shards (written locally by the test's own helpers)."""
    size = jobs_helper.TINY_SIZE
    tiny_data.write_labeled(os.path.join(root, "lab"), "train", tiny_data.balanced_labels(4), size=size)
    tiny_data.write_labeled(os.path.join(root, "lab"), "dev", tiny_data.balanced_labels(1, seed=1), num_shards=1,
                            seed=1, size=size)
    tiny_data.write_labeled(os.path.join(root, "lab"), "test", tiny_data.balanced_labels(1, seed=2), num_shards=1,
                            seed=2, size=size)
    tiny_data.write_unlabeled(os.path.join(root, "unl"), tiny_data.balanced_labels(3, seed=3), num_shards=NUM_SHARDS,
                              size=size)
    # A folder of images for prepro_images.py (two classes, one unreadable file) and SVHN's .mat files.
    rng = np.random.RandomState(4)
    for name, label in (("circle", 0), ("square", 3)):
        os.makedirs(os.path.join(root, "images", name))
        for i, image in enumerate(tiny_data.class_images([label] * 3, rng, 20)):
            Image.fromarray(image).save(os.path.join(root, "images", name, f"{i}.png"))
    with open(os.path.join(root, "images", "square", "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 not a jpeg")
    os.makedirs(os.path.join(root, "mat"))
    for split, n in (("train", 12), ("test", 6), ("extra", 9)):
        scipy.io.savemat(os.path.join(root, "mat", f"{split}_32x32.mat"),
                         {"X": rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8),
                          "y": rng.randint(1, 11, (n, 1)).astype(np.uint8)})


def copy_tree(source, target):
    for directory, _, names in storage.walk(source):
        for name in names:
            path = storage.join(directory, name)
            storage.write_bytes(storage.join(target, storage.relative(path, source)), storage.read_bytes(path))


def run_programs(root):
    """Each program once, every path under `root` (the data is at root/data)."""
    data = f"{root}/data"
    adapters.run_prepro_digits([], parse([define_prepro_digits_flags], [
        "prepro_digits.py", f"--output_dir={root}/digits"]))
    adapters.run_prepro_images([], parse([define_prepro_images_flags], [
        "prepro_images.py", f"--input_dir={data}/images", f"--output_dir={root}/images", "--image_size=16",
        "--num_shards=2", "--num_threads=1"]))
    adapters.run_proc_svhn([], parse([define_proc_svhn_flags], [
        "proc_svhn.py", f"--raw_data_dir={data}/mat", f"--output_dir={root}/svhn", "--full_train_data"]))
    main_program("--mode=train", f"--label_data_dir={data}/lab", f"--model_dir={root}/teacher", "--train_steps=2",
                 "--train_batch_size=4", "--num_train_images=40", "--iterations_per_loop=1", "--seed=0",
                 "--save_checkpoints_steps=1")
    main_program("--mode=eval", f"--label_data_dir={data}/lab", f"--model_dir={root}/teacher")
    main_program("--mode=predict", f"--predict_ckpt_path={root}/teacher", f"--label_data_dir={data}/unl",
                 "--file_prefix=extra", f"--num_shards={NUM_SHARDS}", "--shard_id=0,1",
                 f"--output_dir={root}/pred/predict_label", f"--info_dir={root}/pred/info")
    common = [f"--input_dir={data}/unl", "--file_prefix=extra", f"--prediction_dir={root}/pred/predict_label",
              f"--info_dir={root}/pred/info", f"--num_shards={NUM_SHARDS}", "--num_label_classes=10", "--task=0",
              "--num_image=4", "--poll_seconds=0.01", "--wait_timeout=1"]
    # One shard per invocation, as upstream's scripts (shard 0, the master, last), then both phases at once.
    for phase in (1, 0):
        for shard in (1, 0):
            filter_program(*common, f"--prelim_stats_dir={root}/filter_one/prelim_stats",
                           f"--output_dir={root}/filter_one/data", f"--shard_id={shard}", f"--only_get_stats={phase}")
    filter_program(*common, f"--prelim_stats_dir={root}/filter_all/prelim_stats", f"--output_dir={root}/filter_all/data",
                   "--all_shards")
    main_program("--mode=predict", "--reassign_label=True", "--file_prefix=train", f"--predict_ckpt_path={root}/teacher",
                 f"--label_data_dir={root}/filter_all/data/data", f"--num_shards={NUM_SHARDS}", "--shard_id=0,1",
                 f"--output_dir={root}/reassigned")
    adapters.run_export([], parse([define_main_flags, define_export_flags], [
        "export.py", *TINY, f"--model_dir={root}/teacher", f"--output={root}/export"]))
    adapters.run_convert_checkpoint([], parse([define_convert_checkpoint_flags], [
        "convert_checkpoint.py", "--to_tf1", f"--keras_model={root}/export/model.keras",
        f"--output={root}/tf1/model.ckpt-0"]))
    # The TF1 checkpoint read back (as an original one): predict with it.
    main_program("--mode=predict", f"--predict_ckpt_path={root}/tf1/model.ckpt-0", f"--label_data_dir={data}/unl",
                 "--file_prefix=extra", f"--num_shards={NUM_SHARDS}", "--shard_id=0",
                 f"--output_dir={root}/pred_tf1/predict_label", f"--info_dir={root}/pred_tf1/info")
    # The Beam pipeline on the FnApiRunner in this process (ram:// is not shared with other processes).
    beam_args = ["pseudo_label_beam.py", *TINY, f"--predict_ckpt_path={root}/teacher", f"--input_dir={data}/unl",
                 "--file_prefix=extra", f"--num_shards={NUM_SHARDS}", f"--prelim_stats_dir={root}/beam/prelim_stats",
                 f"--output_dir={root}/beam/filter_data", f"--prediction_dir={root}/beam/predict_label",
                 f"--info_dir={root}/beam/info", "--num_image=4"]
    adapters.run_pseudo_label_beam(["pseudo_label_beam.py", "--runner=FnApiRunner",
                                         "--direct_running_mode=in_memory"],
                                        parse([define_main_flags, define_beam_flags], beam_args))


def tree(root):
    """{relative path: bytes} of every file below `root`."""
    return {storage.relative(storage.join(d, n), root): storage.read_bytes(storage.join(d, n))
            for d, _, names in storage.walk(root) for n in names}


def local_listing(top):
    return sorted(os.path.relpath(os.path.join(d, n), top) for d, dirs, names in os.walk(top) for n in names + dirs)


def scalars(path):
    """(tag, step, value) of a TensorBoard event file: its name and wall times are the clock's, not the run's."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    return [(v.tag, e.step, float(tf.make_ndarray(v.tensor)) if v.HasField("tensor") else v.simple_value)
            for e in LegacyEventFileLoader(path).Load() for v in e.summary.value]


def comparable(name, data, root):
    """The file's content with what legitimately differs between two equal runs taken out: the run's root path,
    the modification times of `.inputs` records (ram:// has none), the dates inside a .keras file (its
    metadata.json and HDF5 weights) and its objects' memory addresses."""
    data = data.replace(root.encode(), b"<root>")
    if name.endswith(".inputs"):
        record = json.loads(data)
        return {k: v[0] if isinstance(v, list) and len(v) == 2 else v for k, v in record.items()}
    if name.endswith(".keras"):  # the HDF5 weights file also records its objects' creation times
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
            arrays = {}
            weights.visititems(lambda key, item: arrays.update(
                {key: item[()].tobytes()} if isinstance(item, h5py.Dataset) else {}))
            return _renumbered_shared_objects(json.loads(archive.read("config.json"))), arrays
    return data


def _renumbered_shared_objects(config):
    """Keras writes `shared_object_id` as the Python id() of a shared object (the dtype policy): a memory address,
    different in every process. Replaced by its order of appearance."""
    numbers = {}

    def walk(value):
        if isinstance(value, dict):
            return {k: numbers.setdefault(v, len(numbers)) if k == "shared_object_id" else walk(v)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(config)


def serving_outputs(export_dir):
    """The SavedModel's answers to fixed images: its .pb files name traced functions with per-process counters,
    so the export is compared by what it computes."""
    images = np.random.RandomState(0).randint(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    loaded = tf.saved_model.load(storage.join(export_dir, "saved_model"))
    return loaded.signatures["serve_images"](images=tf.constant(images))["probabilities"].numpy()


def main(local_root, report_path):
    make_data(os.path.join(local_root, "data"))
    copy_tree(os.path.join(local_root, "data"), f"{RAM_ROOT}/data")
    run_programs(local_root)

    # The ram:// run from an empty working directory and temporary directory: a local write of any kind (a path
    # taken for a local one, a scratch file) shows up in one of them.
    cwd, tmp = os.path.join(local_root, "cwd"), os.path.join(local_root, "tmp")
    os.makedirs(cwd)
    os.makedirs(tmp)
    os.chdir(cwd)
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = None
    run_programs(RAM_ROOT)
    left_locally = {"cwd": local_listing(cwd), "tmp": local_listing(tmp)}
    os.chdir(local_root)

    local = {k: v for k, v in tree(local_root).items() if not k.startswith(("cwd/", "tmp/"))}
    ram = tree(RAM_ROOT)
    events = {root: sorted(k for k in files if "tfevents" in k) for root, files in (("local", local), ("ram", ram))}
    by_outputs = {"export/saved_model/saved_model.pb", "export/saved_model/fingerprint.pb"}
    skipped = set(events["local"]) | set(events["ram"]) | by_outputs
    report = {"left_locally": left_locally, "files": len(local),
              "only_local": sorted(set(local) - set(ram) - skipped), "only_ram": sorted(set(ram) - set(local) - skipped),
              "differ": sorted(name for name in set(local) & set(ram) - skipped
                               if comparable(name, local[name], local_root) != comparable(name, ram[name], RAM_ROOT)),
              "events": [len(events["local"]), len(events["ram"])],
              "scalars_equal": [scalars(storage.join(local_root, a)) == scalars(storage.join(RAM_ROOT, b))
                                for a, b in zip(events["local"], events["ram"])],
              "serving_outputs_equal": bool(np.array_equal(serving_outputs(f"{local_root}/export"),
                                                           serving_outputs(f"{RAM_ROOT}/export"))),
              "stats": json.loads(local["filter_all/data/stats/final_stats.json"])}
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]), sys.argv[2])
