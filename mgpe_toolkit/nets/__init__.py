"""Networks only: no file or image I/O here (weights are loaded by the stages and the training loop)."""
