"""Raw data -> shards in the upstream formats (as upstream `proc_svhn.py` writes them and `data_input.py` reads
them): SVHN, scikit-learn's digits, folders."""
