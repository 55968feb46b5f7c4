"""The FFN, CNN and LSTM, each built from its spec with Keras layers and in plain TensorFlow."""
