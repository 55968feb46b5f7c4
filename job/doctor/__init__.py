"""`python -m job doctor`: can this machine run the config? One line per check, in order:
versions, the NVIDIA driver and its GPUs, the CUDA runtime against the driver, whether
TensorFlow registered every GPU (and if not, which library failed to load), XLA's CUDA
files, a timed training step plain / under XLA / under mixed_float16, and whether the
input pipeline or the step bounds an epoch. Only what the config needs is a PROBLEM.
"""
