"""Training loops, separate from the networks: data, checkpoints, the parser and the paper's GAN."""
