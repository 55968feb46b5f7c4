"""Helpers the tests share: CSV writers, file-system checks, the Kaggle stand-in server."""
