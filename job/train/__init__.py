"""Training's framework-free contract, shared by every style: the task (Task + Split →
Trained), initial draws, epoch bookkeeping, early stopping, schedules, the checkpoint
layout and progress lines. A style's own folder (job/styles/<style>/) holds its loop;
the worker process (job.workers.child) picks it through the registry in job.styles.
"""
