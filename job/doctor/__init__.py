"""`python -m job doctor`: can this machine run the config? One line per check, in order:
the NVIDIA driver and its GPUs, the CUDA runtime against the driver; then each framework in
a probe process of its own (job.doctor.probe): TensorFlow's versions, whether it registered
every GPU (and if not, which library failed to load), XLA's CUDA files, a timed training
step plain / under XLA / under mixed_float16, torch's build and step, and the CUDA library
files each process mapped (a PROBLEM when one mapped both CUDA stacks); last, whether the
input pipeline or the step bounds an epoch. Only what the config needs is a PROBLEM.
"""
