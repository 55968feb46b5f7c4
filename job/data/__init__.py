"""The competition's CSVs as uint8 arrays, and the validation split.

Imports no TensorFlow, no Kaggle client and no run folder: everything here takes
paths and returns arrays, so it is tested with files a test writes.
"""
