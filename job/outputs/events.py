"""TensorBoard event files written without a framework: HParams sessions and report
images, from the process that plans a run (which loads neither TensorFlow nor torch).

The protobufs and the record format are TensorBoard's own (its package ships them); only
the file is opened here, as tf.summary's writer names it.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util


def write_events(logdir: Path, summaries: list[tuple[summary_pb2.Summary, int]]) -> Path:
    """A new event file in `logdir` holding each (summary, step)."""
    logdir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    path = logdir / f"events.out.tfevents.{now:.0f}.{socket.gethostname()}.{time.time_ns()}"
    with open(path, "wb") as f:
        writer = RecordWriter(f)
        writer.write(event_pb2.Event(wall_time=now, file_version="brain.Event:2")
                     .SerializeToString())
        for summary, step in summaries:
            writer.write(event_pb2.Event(wall_time=now, step=step, summary=summary)
                         .SerializeToString())
        writer.flush()
    return path


def write_hparams(logdir: Path, hparams: dict[str, Any], session: str) -> None:
    """One HParams session per model, at the folder above its train/validation runs.
    `session` must be unique across everything one TensorBoard shows: it merges sessions
    of the same id into one row, so every run's cnn-keras would otherwise become one."""
    write_events(logdir, [(hparams_summary.hparams_pb(hparams, trial_id=session), 0)])


def image_summary(tag: str, png: bytes) -> summary_pb2.Summary:
    """A PNG as tf.summary.image stores it: [width, height, png] under the images plugin."""
    width, height = struct.unpack(">II", png[16:24])   # the IHDR chunk
    tensor = tensor_util.make_tensor_proto([str(width).encode(), str(height).encode(), png])
    metadata = image_metadata.create_summary_metadata(display_name=tag, description="")
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=metadata,
                                                                tensor=tensor)])


def write_images(logdir: Path, pictures: dict[str, bytes]) -> None:
    """Each PNG as an image summary at step 0."""
    write_events(logdir, [(image_summary(tag, png), 0) for tag, png in pictures.items()])
