"""scikit-learn's real 8x8 handwritten digits: the small data set that ships with the dependencies."""

import numpy as np

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from nodekd_cli.data.dataset import Dataset

    digits = load_digits()
    # Pixels are counts 0..16 of the original 32x32 bitmaps; scale them to uint8 like every other data set.
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return Dataset("digits", x_train, y_train, x_test, y_test, classes=[str(d) for d in range(10)])
