"""The competition's fixed facts, in one place: its name, its files, its images, its format."""

SLUG = "digit-recognizer"

TRAIN_CSV = "train.csv"
TEST_CSV = "test.csv"
SAMPLE_SUBMISSION_CSV = "sample_submission.csv"
# What the competition's download holds, and what a data folder needs to train.
FILES = (TRAIN_CSV, TEST_CSV, SAMPLE_SUBMISSION_CSV)
TRAINING_FILES = (TRAIN_CSV, TEST_CSV)

IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE   # 784 columns pixel0..pixel783
NUM_CLASSES = 10                   # the digits 0..9

# The header of submission.csv (and of sample_submission.csv); ImageIds count from 1.
SUBMISSION_HEADER = "ImageId,Label"


def rules_url(slug: str = SLUG) -> str:
    """Where a user accepts the rules, without which Kaggle refuses downloads and uploads."""
    return f"https://www.kaggle.com/competitions/{slug}/rules"
