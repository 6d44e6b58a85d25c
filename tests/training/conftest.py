"""A tiny synthetic WIDER-style dataset for training-engine tests (mechanics, not accuracy)."""
import cv2
import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """Four 120x160 images with bright 'faces' and a RetinaFace label.txt (one face without
    landmarks). Returns ``(image_root, label_file)``."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    lines = []
    for k in range(4):
        img = rng.integers(0, 60, (120, 160, 3), dtype=np.uint8)
        name = f"ev/img{k}.jpg"
        lines.append(f"# {name}")
        for j in range(2):
            x, y, s = 10 + 70 * j + 3 * k, 20 + 10 * k, 40
            cv2.rectangle(img, (x, y), (x + s, y + s), (200, 180, 160), -1)
            if j == 0:
                pts = [(x + 12, y + 14), (x + 28, y + 14), (x + 20, y + 22), (x + 14, y + 30), (x + 26, y + 30)]
                lines.append(f"{x} {y} {s} {s} " + " ".join(f"{px} {py} 0.0" for px, py in pts) + " 0.9")
            else:
                lines.append(f"{x} {y} {s} {s} " + " ".join(["-1"] * 15) + " -1")
        (root / "ev").mkdir(exist_ok=True)
        cv2.imwrite(str(root / name), img)
    labels = root / "label.txt"
    labels.write_text("\n".join(lines) + "\n")
    return root, labels
