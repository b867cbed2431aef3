"""Unit tests: pure encoders, the reply reader and the YAML decoders (no server, no socket)."""
