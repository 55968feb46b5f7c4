"""The only code that talks to Kaggle: the official client, downloads and submissions."""
