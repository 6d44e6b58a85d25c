"""Jobs: a face missed for a few video frames stays masked (and only within one shot)."""
from types import SimpleNamespace

import numpy as np

from featherface.core.anonymize import anonymize_passes
from featherface.apps.jobs import AnonymizeJob, FaceTracks, scene_cut, scene_thumbnail
from featherface.core.postprocess import Detections, PostProcessConfig

BOX = [40.0, 40.0, 80.0, 90.0]


def test_tracks_hold_a_missed_face_for_hold_frames():
    tracks = FaceTracks(hold=2)
    assert tracks.update(np.array([BOX])).tolist() == [BOX]
    assert tracks.update(np.array([BOX])).tolist() == [BOX]  # seen twice: held when missed
    assert tracks.update(np.zeros((0, 4))).tolist() == [BOX]  # missed once: held
    assert tracks.update(np.zeros((0, 4))).tolist() == [BOX]  # twice: held
    assert tracks.update(np.zeros((0, 4))).tolist() == []  # the third miss: gone
    moved = [44.0, 40.0, 84.0, 90.0]  # IoU 0.82 with BOX: the same face, not held twice
    tracks = FaceTracks(hold=3)
    tracks.update(np.array([BOX]))
    tracks.update(np.array([BOX]))
    assert tracks.update(np.array([moved])).tolist() == [moved]


def test_tracks_do_not_hold_a_one_frame_detection():
    """A detection of one frame (mostly false positives) is masked in its frame only; with
    ``min_hits=1`` it is held too."""
    tracks = FaceTracks(hold=5)
    assert tracks.update(np.array([BOX])).tolist() == [BOX]
    assert tracks.update(np.zeros((0, 4))).tolist() == []
    tracks = FaceTracks(hold=5, min_hits=1)
    tracks.update(np.array([BOX]))
    assert tracks.update(np.zeros((0, 4))).tolist() == [BOX]


class _Detector:
    """Gives the listed detections frame after frame."""

    def __init__(self, per_frame):
        self.per_frame = iter(per_frame)
        self.runner, self.arch, self.long_side, self.refine_landmarks = SimpleNamespace(), "nano", 640, False
        self.cfg = PostProcessConfig()

    def detect_arrays(self, image):
        boxes = np.array(next(self.per_frame), np.float32).reshape(-1, 4)
        return Detections(boxes, np.full(len(boxes), 0.9, np.float32), np.zeros((len(boxes), 5, 2), np.float32))

    def detect_passes(self, image, sides, flip=False, score_threshold=None):
        assert sides == (640,) and not flip  # a 160x120 frame: one pass
        return self.detect_arrays(image)


def test_video_mask_holds_within_a_shot_and_not_across_a_cut():
    grey = np.full((120, 160, 3), 120, np.uint8)
    other = np.full((120, 160, 3), 10, np.uint8)  # a cut: the next shot looks nothing like it
    assert not scene_cut(scene_thumbnail(grey), scene_thumbnail(grey + 5))
    assert scene_cut(scene_thumbnail(grey), scene_thumbnail(other))
    job = AnonymizeJob(_Detector([[BOX], [BOX], [], [], []]), "nano", mode="solid", hold=5)
    job.frame(grey, 0)
    rec0, out0 = job.frame(grey, 1)
    rec1, out1 = job.frame(grey, 2)  # missed: held, the same pixels masked
    assert rec1["faces"] == [] and rec1["held"] == [BOX]
    np.testing.assert_array_equal(out1, out0)
    rec2, out2 = job.frame(other, 3)  # a new shot: nothing held
    assert rec2["held"] == [] and (out2 == other).all()


def test_anonymize_passes_add_the_full_size_only_for_large_images():
    assert anonymize_passes((408, 612), 640, "full") == (640,)
    assert anonymize_passes((540, 960), 640, "full") == (640,)  # 1.5 times 640: not more
    assert anonymize_passes((541, 961), 640, "full") == (640, None)
    assert anonymize_passes((2160, 3840), 640, "full") == (640, None)
    assert anonymize_passes((2160, 3840), None, "full") == (None,)  # already at the full size
    assert anonymize_passes((300, 400), 640, 800) == (640, 800)
    assert anonymize_passes((300, 400), 640, None) == (640,)
