"""Annotation readers: both text formats, line-numbered errors, the official .mat ground truth."""
import numpy as np
import pytest

from featherface.data.annotations import AnnotationError, load_mat_ground_truth, read_annotations

from ..conftest import shared_file

RETINA = """# 0--Parade/a.jpg
10 20 30 40 12.0 25.0 0.0 28.0 25.0 0.0 20.0 32.0 0.0 14.0 40.0 0.0 26.0 40.0 0.0 0.9
100 100 5 6 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1
# 0--Parade/empty.jpg
# 1--Handshaking/b.jpg
1 2 3 4
"""

OFFICIAL = """0--Parade/a.jpg
2
10 20 30 40 0 0 0 0 0 0
5 6 7 8 2 1 0 1 2 0
0--Parade/none.jpg
0
0 0 0 0 0 0 0 0 0 0
1--Handshaking/b.jpg
1
1 2 3 4 0 0 1 0 0 1
"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_retinaface_format(tmp_path):
    recs = read_annotations(_write(tmp_path, "label.txt", RETINA))
    assert [r.path for r in recs] == ["0--Parade/a.jpg", "0--Parade/empty.jpg", "1--Handshaking/b.jpg"]
    a = recs[0]
    np.testing.assert_allclose(a.boxes, [[10, 20, 40, 60], [100, 100, 105, 106]])
    np.testing.assert_allclose(a.landmarks[0], [[12, 25], [28, 25], [20, 32], [14, 40], [26, 40]])
    assert a.has_landmarks.tolist() == [True, False]  # -1 marks missing landmarks
    assert len(recs[1]) == 0
    assert recs[2].has_landmarks.tolist() == [False]  # box-only line
    assert recs[0].line == 1 and recs[2].line == 5


def test_official_format_with_attributes_and_empty_images(tmp_path):
    recs = read_annotations(_write(tmp_path, "wider_face_val_bbx_gt.txt", OFFICIAL))
    assert [len(r) for r in recs] == [2, 0, 1]
    np.testing.assert_allclose(recs[0].boxes[1], [5, 6, 12, 14])
    assert recs[0].attributes["blur"].tolist() == [0, 2]
    assert recs[0].attributes["occlusion"].tolist() == [0, 2]
    assert recs[0].attributes["invalid"].tolist() == [0, 1]
    assert recs[2].attributes["pose"].tolist() == [1]
    assert recs[2].attributes["invalid"].tolist() == [0]
    assert not recs[0].has_landmarks.any()


@pytest.mark.parametrize("text, line, words", [
    # RetinaFace label.txt
    ("# a.jpg\n10 20 30\n", 2, "got 3"),
    ("# a.jpg\n10 20 x 40\n", 2, "expected numbers"),
    ("# a.jpg\n1 1 1 1\n\n1 2 3 4 5 6\n", 4, "got 6"),
    ("# a.jpg\n1 1 1 1\n#\n", 3, "without an image path"),
    ("# a.jpg\n1 1 -5 4\n", 2, "negative box size"),
    # official wider_face_*_bbx_gt.txt
    ("a.jpg\ntwo\n", 2, "face count"),
    ("10 20 30 40\n", 1, "expected an image path"),  # a box line first: not a '#' file, so official
    ("a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n", 2, "file ends"),
    ("a.jpg\n1\n1 2 3 4 0 0\n", 3, "10 numbers"),
    ("a.jpg\n1\n1 2 3 4 0 0 0 0 0 0\nnot-an-image\n", 4, "image path"),
])
def test_errors_name_file_and_line(tmp_path, text, line, words):
    p = _write(tmp_path, "labels.txt", text)
    with pytest.raises(AnnotationError, match=words) as exc:
        read_annotations(p)
    assert str(exc.value).startswith(f"{p}:{line}:")
    assert exc.value.line == line


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_annotations(tmp_path / "nope.txt")


def test_official_mat_ground_truth():
    gt = load_mat_ground_truth(shared_file("widerface/ground_truth"))
    assert gt.num_images == 3226
    assert len(gt.events) == 61
    # The settings are nested: every Easy face is kept in Medium, every Medium face in Hard.
    n_faces = 0
    for _, _, e, i in gt:
        k = {s: set(gt.keep[s][e][i].tolist()) for s in ("easy", "medium", "hard")}
        assert k["easy"] <= k["medium"] <= k["hard"] <= set(range(1, len(gt.boxes[e][i]) + 1))
        n_faces += len(gt.boxes[e][i])
    assert n_faces == 39708  # faces in the official validation set
