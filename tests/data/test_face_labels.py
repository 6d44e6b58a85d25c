"""Label readers for evaluation: labels.json, Pascal VOC folders, COCO JSON; one-line errors."""
import json

import numpy as np
import pytest

from featherface.data.annotations import AnnotationError
from featherface.data.face_labels import read_face_labels

VOC = """<annotation><filename>{name}</filename>
<object><name>face</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>50</xmax><ymax>70.5</ymax></bndbox></object>
<object><name>{cls}</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
</annotation>"""


def test_voc_folder_all_objects_are_faces_unless_classes(tmp_path):
    (tmp_path / "a.xml").write_text(VOC.format(name="a.jpg", cls="mask"))
    (tmp_path / "b.xml").write_text(VOC.format(name="b.png", cls="face"))
    labels = read_face_labels(tmp_path)
    assert sorted(labels) == ["a.jpg", "b.png"]
    np.testing.assert_array_equal(labels["a.jpg"].boxes, [[10, 20, 50, 70.5], [1, 2, 3, 4]])
    only = read_face_labels(tmp_path, classes={"face"})
    assert len(only["a.jpg"]) == 1 and len(only["b.png"]) == 2


def test_voc_errors_name_file_and_element(tmp_path):
    (tmp_path / "bad.xml").write_text("<annotation><object><name>f</name></object></annotation>")
    with pytest.raises(AnnotationError, match=r"bad\.xml.*<object> 1 has no <bndbox>"):
        read_face_labels(tmp_path)
    (tmp_path / "bad.xml").write_text("<annotation><object><bndbox><xmin>a</xmin></bndbox></object></annotation>")
    with pytest.raises(AnnotationError, match=r"bad\.xml.*numeric"):
        read_face_labels(tmp_path)
    (tmp_path / "bad.xml").write_text("<annotation><object>")
    with pytest.raises(AnnotationError, match=r"bad\.xml:1.*not valid XML"):
        read_face_labels(tmp_path)


def test_coco_boxes_and_keypoints(tmp_path):
    coco = {"images": [{"id": 1, "file_name": "p.jpg"}, {"id": 2, "file_name": "empty.jpg"}],
            "categories": [{"id": 1, "name": "face"}],
            "annotations": [{"image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40],
                             "keypoints": [1, 2, 2, 3, 4, 2, 5, 6, 2, 7, 8, 2, 9, 10, 2]},
                            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
                            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1}]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    labels = read_face_labels(path)
    p = labels["p.jpg"]
    np.testing.assert_array_equal(p.boxes, [[10, 20, 40, 60], [0, 0, 5, 5]])
    assert p.has_landmarks.tolist() == [True, False]
    np.testing.assert_array_equal(p.landmarks[0], [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]])
    assert len(labels["empty.jpg"]) == 0


def test_coco_bad_image_id(tmp_path):
    path = tmp_path / "coco.json"
    path.write_text(json.dumps({"images": [], "annotations": [{"image_id": 5, "bbox": [0, 0, 1, 1]}]}))
    with pytest.raises(AnnotationError, match=r"coco\.json.*annotations\[0\]"):
        read_face_labels(path)


def test_labels_json_and_errors(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"images": {"x.jpg": {"boxes": [[1, 2, 3, 4]], "landmarks": [list(range(10))]}}}))
    r = read_face_labels(path)["x.jpg"]
    assert r.has_landmarks.tolist() == [True] and r.landmarks[0, 4].tolist() == [8, 9]
    path.write_text(json.dumps({"images": {"x.jpg": {"boxes": [[5, 2, 3, 4]]}}}))
    with pytest.raises(AnnotationError, match=r'labels\.json.*images\["x\.jpg"\]: box 0'):
        read_face_labels(path)
    path.write_text('{"images": {\n"x": }')
    with pytest.raises(AnnotationError, match=r"labels\.json:2.*not valid JSON"):
        read_face_labels(path)
    with pytest.raises(FileNotFoundError):
        read_face_labels(tmp_path / "nope.json")
