"""Make the "digits" preset: real logits of a small classifier on scikit-learn's handwritten digits.

    python tools/make_digits_preset.py            # writes resources/digits_logits.safetensors

The 8 x 8 digit images that scikit-learn ships (1797 samples, 10 classes) are split 2:1 with a fixed
seed; a multinomial logistic regression (64 -> 10, L2, C = 0.05, on pixel values scaled to [0, 1]) is
trained on the larger part, and its logits (``decision_function``: one affine map per class, before the
softmax) for the first 300 held-out images are stored as float32, the way a model's logits are dumped,
with the true labels. Deterministic: the split, the solver (lbfgs) and the data are fixed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "digits_logits.safetensors"
SAMPLES = 300


def make_logits() -> tuple[np.ndarray, np.ndarray, float]:
    """``(logits (300, 10) float32, labels (300,) int64, held-out accuracy)``."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data / 16.0
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=1 / 3, random_state=0)
    model = LogisticRegression(C=0.05, max_iter=5000).fit(x_train, y_train)
    logits = model.decision_function(x_test[:SAMPLES]).astype(np.float32)
    labels = y_test[:SAMPLES].astype(np.int64)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == labels))
    return logits, labels, accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    from safetensors.numpy import save_file

    logits, labels, accuracy = make_logits()
    meta = {"source": "sklearn.datasets.load_digits", "model": "LogisticRegression(C=0.05)",
            "accuracy": f"{accuracy:.4f}", "made_by": "tools/make_digits_preset.py"}  # fmt: skip
    save_file({"logits": logits, "labels": labels}, str(args.out), metadata=meta)
    print(f"{args.out}: {logits.shape} float32 logits, accuracy {accuracy:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
