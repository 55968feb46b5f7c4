"""The keras-io "Simple MNIST convnet" example (keras.io/examples/vision/mnist_convnet),
as published, on the competition's CSVs: the reference point time_to_accuracy.py times.

Two 3x3 convolutions (32, 64) each with 2x2 max pooling, dropout 0.5, a softmax layer;
Adam, categorical cross-entropy, batch 128, 15 epochs, 10% of the rows for validation.
Reads DATA_DIR/train.csv and test.csv, writes SUBMISSION and history.json beside it
(per epoch: seconds of training so far, validation accuracy).

Run: python scripts/keras_io_convnet.py DATA_DIR SUBMISSION
"""

import json
import sys
import time
from pathlib import Path

import keras
import pandas as pd
from keras import layers

BATCH_SIZE, EPOCHS, CLASSES = 128, 15, 10


class Clock(keras.callbacks.Callback):
    """Training seconds so far and validation accuracy, at each epoch's end."""

    def __init__(self):
        super().__init__()
        self.points, self.spent, self.began = [], 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.spent += time.perf_counter() - self.began
        self.points.append((self.spent, float(logs["val_accuracy"])))


def main(data_dir: str, submission: str) -> int:
    train = pd.read_csv(Path(data_dir) / "train.csv").to_numpy()
    test = pd.read_csv(Path(data_dir) / "test.csv").to_numpy()
    x_train = (train[:, 1:].astype("float32") / 255).reshape(-1, 28, 28, 1)
    y_train = keras.utils.to_categorical(train[:, 0], CLASSES)
    x_test = (test.astype("float32") / 255).reshape(-1, 28, 28, 1)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(CLASSES, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    clock = Clock()
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=EPOCHS, validation_split=0.1,
              callbacks=[clock], verbose=2)
    labels = model.predict(x_test, batch_size=1024, verbose=0).argmax(axis=1)
    out = Path(submission)
    out.write_text("ImageId,Label\n" + "".join(f"{i},{label}\n"
                                                for i, label in enumerate(labels, 1)))
    (out.parent / "history.json").write_text(json.dumps(clock.points))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
