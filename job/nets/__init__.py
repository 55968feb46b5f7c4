"""The FFN and CNN, each built from its spec with Keras layers and in plain TensorFlow."""
