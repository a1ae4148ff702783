"""One MultiWorkerMirroredStrategy worker for test_distributed_training.py.

usage: python mwms_worker.py INDEX PORT0,PORT1 MODEL_DIR OUTPUT.npz
"""

import json
import os
import sys

index, ports, model_dir, output = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3], sys.argv[4]
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                      "task": {"type": "worker", "index": index}})
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import equivalence_setup  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()
metrics, weights = equivalence_setup.run(strategy, os.path.join(model_dir, f"worker{index}"))
if index == 0:
    np.savez(output, **{"metric:" + json.dumps(i) + ":" + k: v for i, m in enumerate(metrics) for k, v in m.items()},
             **{"weight:" + k: v for k, v in weights.items()})
