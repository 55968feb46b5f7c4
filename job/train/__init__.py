"""Training loops: Keras fit and a plain TensorFlow loop, sharing everything else."""
