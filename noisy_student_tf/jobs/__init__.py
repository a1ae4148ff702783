"""One module per entry point: parse flags, wire the library pieces together, run."""
