"""Data: image preprocessing, RandAugment, and (later) records and input pipelines."""
