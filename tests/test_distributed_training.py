"""The same global batch gives the same loss and weights on one device, MirroredStrategy over two logical CPU
devices, and MultiWorkerMirroredStrategy with two local worker processes."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

import equivalence_setup

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_multi_worker(tmp_path):
    ports = f"{free_port()},{free_port()}"
    output = str(tmp_path / "mwms.npz")
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "mwms_worker.py"), str(i), ports,
                               str(tmp_path / "mwms"), output], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    return procs, output


def collect_multi_worker(procs, output):
    logs = [p.communicate(timeout=600)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    data = np.load(output)
    metrics = [{} for _ in range(equivalence_setup.STEPS)]
    weights = {}
    for key in data.files:
        kind, rest = key.split(":", 1)
        if kind == "metric":
            step, name = rest.split(":", 1)
            metrics[json.loads(step)][name] = float(data[key])
        else:
            weights[rest] = data[key]
    return metrics, weights


def test_one_device_mirrored_and_multi_worker_agree(tmp_path):
    # The multi-worker processes start first and run while this process computes the other two.
    procs, output = start_multi_worker(tmp_path)
    try:
        single = equivalence_setup.run(tf.distribute.get_strategy(), str(tmp_path / "single"))
        mirrored = equivalence_setup.run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
                                         str(tmp_path / "mirrored"))
    finally:
        multi = collect_multi_worker(procs, output)
    for name, (metrics, weights) in {"mirrored": mirrored, "multi-worker": multi}.items():
        for step, (expected, got) in enumerate(zip(single[0], metrics)):
            for key in ("train/loss", "lab/loss", "ext/loss", "lab/acc"):
                assert abs(got[key] - expected[key]) <= 1e-5 * max(1.0, abs(expected[key])), (name, step, key)
        assert sorted(weights) == sorted(single[1])
        for path, value in single[1].items():
            np.testing.assert_allclose(weights[path], value, atol=1e-5, rtol=1e-5, err_msg=f"{name}: {path}")
    # Training moved the weights (so agreement is not trivial).
    assert single[0][1]["train/loss"] != single[0][0]["train/loss"]
