"""Kaggle digit-recognizer training job: FFN, CNN and LSTM in each training style, compared,
the best submitted. `job/` is laid out by role; see README "Layout"."""

__version__ = "0.1.0"
