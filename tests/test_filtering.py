"""filter_unlabel against a hand computation of upstream `filter_unlabel.py` (`get_threshold`, `get_keep_image_idx`) on
crafted predictions with known confidences.

Three classes over two shards (confidences sit inside their 0.01 bins, since e.g. float32(0.95) < 0.95 falls in
bin 0.94, upstream and here alike), min_threshold 0.4, max_prob 0.96, num_image 250:
  class 0: 400 images at 0.955 and 0.555 -> threshold 0.55, total 400, each kept with p = 250/400;
  class 1:  50 at 0.755 (+30 at 0.355)   -> threshold 0.40, total 50, every image exactly 5 times;
  class 2: 100 at 0.455 (+20 at 0.975)   -> threshold 0.40, total 100, 2 or 3 copies (2.5 expected);
                                            the 0.975 images are above max_prob and never kept.
"""

import json
import os
import shutil

import numpy as np
import pytest

import offline_data
from noisy_student_tf.errors import UserError
from noisy_student_tf.offline import filtering
from noisy_student_tf.config import FilterConfig
from noisy_student_tf.offline.filter_shards import run_all_shards, run_shard
from noisy_student_tf.offline.provenance import StaleOutput

C = 3
NUM_SHARDS = 2
# (class, confidence, count in shard 0, count in shard 1)
GROUPS = [(0, 0.955, 120, 80), (0, 0.555, 60, 140), (1, 0.755, 25, 25), (1, 0.355, 30, 0),
          (2, 0.455, 40, 60), (2, 0.975, 10, 10)]
BIN = {0.955: 95, 0.555: 55, 0.755: 75, 0.355: 35, 0.455: 45, 0.975: 97}


def shard_rows(shard):
    rng = np.random.RandomState(100 + shard)
    labels, confs = [], []
    for label, conf, *counts in GROUPS:
        labels += [label] * counts[shard]
        confs += [conf] * counts[shard]
    order = rng.permutation(len(labels))
    return np.asarray(labels)[order], np.asarray(confs)[order]


def write_inputs(root, shards=range(NUM_SHARDS), conf_scale=1.0):
    for shard in shards:
        labels, confs = shard_rows(shard)
        offline_data.write_image_shard(os.path.join(root, "unl", "extra-%05d-of-%05d" % (shard, NUM_SHARDS)),
                                       labels, seed=shard, size=8)
        offline_data.write_predictions(root, shard, NUM_SHARDS,
                                       offline_data.confident_probabilities(labels, confs * conf_scale, C))


def config(root, out="out", **changes):
    values = dict(input_dir=f"{root}/unl", prediction_dir=f"{root}/predict_label", info_dir=f"{root}/info",
                  prelim_stats_dir=f"{root}/{out}/prelim_stats", output_dir=f"{root}/{out}/filter_data",
                  num_classes=C, num_shards=NUM_SHARDS, num_image=250, replica=0, min_threshold=0.4, max_prob=0.96,
                  file_prefix="extra", seed=7, poll_seconds=0.05, wait_timeout=0.5)
    values.update(changes)
    return FilterConfig(**values)


def run_two_phases(cfg):
    for phase in (True, False):
        for shard in reversed(range(NUM_SHARDS)):
            run_shard(cfg, shard, phase)


def load(path):
    with open(path) as f:
        return json.load(f)


def hand_histogram(shards):
    counts = {}
    for label, conf, *per_shard in GROUPS:
        n = sum(per_shard[s] for s in shards)
        if n:
            counts.setdefault(str(label), [0] * 101)[BIN[conf]] += n
    return counts


@pytest.fixture(scope="module")
def filtered(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("filter"))
    write_inputs(root)
    cfg = config(root)
    run_two_phases(cfg)
    return root, cfg


def test_statistics_thresholds_and_final_stats_match_the_hand_computation(filtered):
    root, cfg = filtered
    for shard in range(NUM_SHARDS):
        prelim = load(cfg.prelim_path(shard, 0))
        assert {k: [n for _, n in v] for k, v in prelim.items()} == hand_histogram([shard])
        assert all([t for t, _ in v] == [i / 100 for i in range(101)] for v in prelim.values())
    total = load(os.path.join(cfg.prelim_stats_dir, "total_counts.json"))
    assert {k: [n for _, n in v] for k, v in total.items()} == hand_histogram([0, 1])
    suffix = load(os.path.join(cfg.prelim_stats_dir, "total_counts_sum.json"))
    assert suffix["0"][55][1] == 400 and suffix["0"][56][1] == 200 and suffix["2"][0][1] == 120
    assert load(cfg.threshold_path) == {"0": [0.55, 400], "1": [0.4, 50], "2": [0.4, 100]}
    assert load(os.path.join(cfg.output_dir, "num_image_across_cat.json")) == {"num_image_acorss_cat": 400}

    final = load(os.path.join(cfg.output_dir, "stats", "final_stats.json"))
    counts = final["cat_count"]
    assert counts["1"] == 250  # 50 images x exactly 5 copies
    assert 200 <= counts["2"] <= 300 and abs(counts["0"] - 250) < 5 * np.sqrt(400 * 0.625 * 0.375)
    assert final["total_cnt"] == sum(counts.values())
    assert final["cat_sorted_pairs"] == sorted([[k, v] for k, v in counts.items()], key=lambda kv: -kv[1])
    per_shard = [load(cfg.stats_path(s, 0)) for s in range(NUM_SHARDS)]
    assert {k: sum(s.get(k, 0) for s in per_shard) for k in counts} == counts


def test_written_records_carry_each_image_with_its_own_prediction(filtered):
    root, cfg = filtered
    for shard in range(NUM_SHARDS):
        labels, confs = shard_rows(shard)
        images = offline_data.read_records(os.path.join(root, "unl", "extra-%05d-of-%05d" % (shard, NUM_SHARDS)),
                                           {"image/encoded": offline_data.tf.io.FixedLenFeature([], "string")})
        by_bytes = {}
        for i, parsed in enumerate(images):
            by_bytes.setdefault(parsed["image/encoded"].numpy(), []).append(i)
        written = offline_data.read_records(cfg.data_path(shard), {
            "image/encoded": offline_data.tf.io.FixedLenFeature([], "string"),
            "probabilities": offline_data.tf.io.FixedLenFeature([C], "float32"),
            "label": offline_data.tf.io.FixedLenFeature([], "int64"),
            "prob": offline_data.tf.io.FixedLenFeature([], "float32")})
        assert len(written) == sum(load(cfg.stats_path(shard, 0)).values())
        copies = {}
        for record in written:
            index = by_bytes[record["image/encoded"].numpy()][0]
            label = int(record["label"])
            assert label == labels[index]
            assert float(record["prob"]) == pytest.approx(confs[index], abs=1e-6)
            assert float(record["probabilities"][label]) == float(record["prob"])
            assert confs[index] <= 0.96 and confs[index] >= {0: 0.55, 1: 0.4, 2: 0.4}[label]
            copies[index] = copies.get(index, 0) + 1
        assert all(copies[i] == 5 for i in copies if labels[i] == 1)
        assert all(copies[i] in (2, 3) for i in copies if labels[i] == 2)
        assert all(copies[i] == 1 for i in copies if labels[i] == 0)
        # Records are shuffled, not grouped by class.
        assert len({int(r["label"]) for r in written[:30]}) > 1


def test_selection_matches_the_expected_copies_over_many_seeds():
    labels = np.concatenate([shard_rows(0)[0], shard_rows(1)[0]])
    confs = np.concatenate([shard_rows(0)[1], shard_rows(1)[1]]).astype(np.float32)
    selected = [(0.55, 400), (0.4, 50), (0.4, 100)]
    kwargs = dict(num_image=250, max_prob=0.96, use_all=False)
    for upsample, expected in ((True, [250, 250, 250]), (False, [250, 50, 100])):
        totals = np.array([filtering.select_copies(labels, confs, selected, upsample=upsample,
                                                   rng=np.random.default_rng(seed), **kwargs)
                           for seed in range(300)])
        per_class = np.array([[t[labels == c].sum() for c in range(C)] for t in totals])
        np.testing.assert_allclose(per_class.mean(0), expected, atol=3.0)
    everything = filtering.select_copies(labels, confs, selected, upsample=True, num_image=250, max_prob=0.96,
                                         use_all=True, rng=np.random.default_rng(0))
    assert [int(everything[labels == c].sum()) for c in range(C)] == [400, 50, 100]
    total = filtering.histogram(labels, confs, C)
    assert filtering.select_thresholds(total, num_image=250, min_threshold=0.4, max_prob=0.96, use_top=False,
                                       use_all=False) == [(0.4, 400), (0.4, 50), (0.4, 100)]


def test_an_off_grid_min_threshold_works_where_every_class_finds_a_threshold():
    # As upstream get_threshold: the walk down the grid stops where num_image images are reached, or at the grid
    # value equal to min_threshold; off the grid, only the first can happen.
    labels = np.concatenate([shard_rows(0)[0], shard_rows(1)[0]])
    confs = np.concatenate([shard_rows(0)[1], shard_rows(1)[1]]).astype(np.float32)
    total = filtering.histogram(labels, confs, C)
    kwargs = dict(max_prob=0.96, use_top=True, use_all=False)
    enough = min(int((confs[labels == c] >= 0.31).sum()) for c in range(C))
    assert enough > 0
    off_grid = filtering.select_thresholds(total, num_image=enough, min_threshold=0.305, **kwargs)
    assert off_grid == filtering.select_thresholds(total, num_image=enough, min_threshold=0.3, **kwargs)
    assert all(t >= 0.31 for t, _ in off_grid)
    with pytest.raises(UserError, match=r"class \d: no threshold found: --min_threshold=0.305 is not on the 0.01"):
        filtering.select_thresholds(total, num_image=10 ** 6, min_threshold=0.305, **kwargs)


def test_same_seed_same_bytes_and_all_shards_equals_the_two_phase_run(filtered, tmp_path):
    root, cfg = filtered

    def outputs(c):
        files = {}
        for base in (c.prelim_stats_dir, c.output_dir):
            for directory, _, names in os.walk(base):
                for name in names:
                    if not name.endswith(".inputs"):
                        with open(os.path.join(directory, name), "rb") as f:
                            files[os.path.relpath(os.path.join(directory, name), base)] = f.read()
        return files

    once = outputs(cfg)
    assert any(k.startswith("data/") for k in once) and any(k.startswith("samples/") for k in once)
    all_shards = config(root, out="all")
    run_all_shards(all_shards, num_workers=2)
    assert outputs(all_shards) == once
    again = config(root, out="again")
    run_two_phases(again)
    assert outputs(again) == once
    other_seed = config(root, out="seed8", seed=8)
    run_all_shards(other_seed)
    assert outputs(other_seed)["data/train-0-00000-of-00002"] != once["data/train-0-00000-of-00002"]


def test_rerun_skips_finished_shards_and_stale_results_are_refused_or_rebuilt(tmp_path):
    root = str(tmp_path)
    write_inputs(root)
    cfg = config(root)
    run_two_phases(cfg)
    data = cfg.data_path(1)
    stamp = os.stat(data).st_mtime_ns
    assert run_shard(cfg, 1, False) == "done" and os.stat(data).st_mtime_ns == stamp

    # New predictions for shard 1 (every confidence lower): the old results must not be reused.
    write_inputs(root, shards=[1], conf_scale=0.9)
    with pytest.raises(StaleOutput, match=r"stats_00001_0.json is left from an earlier run .*train-info-00001"):
        run_shard(cfg, 1, True)
    rebuilt = config(root, rebuild_stale=True)
    run_two_phases(rebuilt)
    fresh = config(root, out="fresh")
    run_two_phases(fresh)
    assert load(rebuilt.threshold_path) == load(fresh.threshold_path)
    for shard in range(NUM_SHARDS):
        with open(rebuilt.data_path(shard), "rb") as a, open(fresh.data_path(shard), "rb") as b:
            assert a.read() == b.read()
    # Other flags (a new target per class) also make the stored thresholds stale.
    with pytest.raises(StaleOutput, match=r"is left from an earlier run with other inputs \(changed: num_image\)"):
        run_shard(config(root, num_image=100), 0, True)


def test_waiting_for_other_shards_gives_up_naming_the_missing_files(tmp_path):
    root = str(tmp_path)
    write_inputs(root)
    cfg = config(root)
    with pytest.raises(UserError, match="waiting for 1 prelim stats files: .*prelim_stats_00001_0.json"):
        run_shard(cfg, 0, True)
    with pytest.raises(UserError, match="waiting for 1 threshold file: .*threshold.json"):
        run_shard(cfg, 1, False)


@pytest.mark.parametrize("damage, message", [
    ("classes", r"train-info-00001-of-00002-00000.*--num_label_classes=4"),
    ("info", r"holds 315 predictions but .*info-00001-of-00002-00000.txt says 316"),
    ("missing", r"prediction file .*train-info-00001-of-00002-00000 does not exist"),
    ("empty", r"holds 0 predictions but .*info-00001-of-00002-00000.txt says 315"),
    ("truncated", r"train-info-00001-of-00002-00000 is corrupt or truncated"),
    ("nan", r"record 3 has NaN or infinite probabilities"),
    ("replicas", r"predicted by more than --total_replicas=1 workers"),
])
def test_bad_prediction_inputs_are_refused_with_the_file_named(tmp_path, damage, message):
    root = str(tmp_path)
    write_inputs(root)
    changes = {}
    prediction = os.path.join(root, "predict_label", "train-info-00001-of-00002-00000")
    info = os.path.join(root, "info", "info-00001-of-00002-00000.txt")
    if damage == "classes":
        changes["num_classes"] = 4
    elif damage == "info":
        with open(info, "w") as f:
            json.dump({"image_num": 316}, f)
    elif damage == "missing":
        os.unlink(prediction)
    elif damage == "empty":
        offline_data.write(prediction, [])
    elif damage == "truncated":
        with open(prediction, "rb") as f:
            head = f.read()
        with open(prediction, "wb") as f:
            f.write(head[: len(head) // 2])
    elif damage == "nan":
        labels, confs = shard_rows(1)
        probs = offline_data.confident_probabilities(labels, confs, C)
        probs[3, 2] = np.nan
        offline_data.write_predictions(root, 1, NUM_SHARDS, probs)
    elif damage == "replicas":
        shutil.copy(prediction, prediction[:-1] + "1")
    cfg = config(root, **changes)
    with pytest.raises(UserError, match=message):
        cfg.validate()
        run_shard(cfg, 1, True)
    assert not os.path.exists(cfg.prelim_path(1, 0))
