"""TensorBoard's writer for the torch style, kept from loading TensorFlow.

torch.utils.tensorboard imports TensorBoard, which imports TensorFlow for its file I/O
whenever TensorFlow is installed: in the image that would bring TensorFlow's CUDA 12
stack into torch's process (shared SONAMEs, one binding each). TensorBoard's own switch
for this is a module named `tensorboard.compat.notf` (what the tensorboard-notf package
installs): present, TensorBoard uses its bundled stub instead, which writes the same files.
"""

from __future__ import annotations

import sys
import types

NO_TENSORFLOW = "tensorboard.compat.notf"


def summary_writer(logdir: str):
    """torch's SummaryWriter for `logdir`, TensorFlow left unloaded."""
    # Where TensorFlow is loaded already (a test process holding both frameworks), there is
    # nothing to keep out, and the stub would break TensorBoard for TensorFlow's own use.
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault(NO_TENSORFLOW, types.ModuleType(NO_TENSORFLOW))
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(logdir)
