"""Kaggle digit-recognizer training job: FFN and CNN, each in plain TensorFlow and Keras."""

__version__ = "0.1.0"
