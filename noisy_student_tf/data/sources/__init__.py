"""Raw data -> shards in the upstream formats (spec §4.1, §4.2, §4.8): SVHN, scikit-learn's digits, folders."""
