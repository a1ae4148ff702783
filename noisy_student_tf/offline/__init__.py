"""Offline pseudo-labelling: predict shards, filter and balance them, reassign labels (spec §5.12, §6, §7)."""
