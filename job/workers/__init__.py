"""One model, one process: the parent starts a worker per model task, each of which
imports exactly one framework (TensorFlow for -tf/-keras, torch for -torch), trains,
saves the model and its logits, and ends, giving its GPU back.

`protocol` is what they say to each other, `child` the worker's side (`python -m
job.workers.child`), `parent` starting them, side by side where there are devices for it.
"""
