"""Offline pseudo-labelling: predict shards, filter and balance them, reassign labels (upstream `predict_label.py`,
`run_prediction`, and `filter_unlabel.py`)."""
