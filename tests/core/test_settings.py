"""Every default declared once (featherface.core.settings): the library, the command line, the batch
API and the page all start from the same detector and anonymiser settings."""
from dataclasses import asdict, fields

import numpy as np
import pytest

from featherface import FaceDetector, anonymize, read_image
from featherface.apps.jobs import AnonymizeJob
from featherface.apps.webapp import site_config
from featherface.cli import build_parser
from featherface.core.errors import InputError, UsageError
from featherface.core.postprocess import PostProcessConfig
from featherface.core.settings import (ANONYMIZE, DETECTOR, LOOK, PASSES, AnonymizeSettings, DetectorSettings,
                                       page_settings)
from featherface.core.weights import EXAMPLE_IMAGE


def test_every_surface_uses_the_same_settings():
    # the command line: each flag's default is the setting
    detect = build_parser().parse_args(["detect", "--example"])
    anon = build_parser().parse_args(["anonymize", "--example"])
    for f in fields(DetectorSettings):
        if f.name not in ("score_threshold", "long_side", "refine_landmarks"):
            assert getattr(detect, f.name) == getattr(DETECTOR, f.name) == getattr(anon, f.name), f.name
    # the landmarks' second look: a flag where landmarks are the output, not for masks
    assert detect.refine_landmarks == DETECTOR.refine_landmarks and not hasattr(anon, "refine_landmarks")
    assert detect.long_side == DETECTOR.long_side and detect.score_threshold is None  # None: the model's own
    for f in fields(AnonymizeSettings):
        if f.name != "detail":  # not a flag: the library's and the page's option
            assert tuple(np.atleast_1d(getattr(anon, f.name))) == tuple(np.atleast_1d(getattr(ANONYMIZE, f.name))), f.name
    # the library: the detector's and post-processing's defaults
    det = FaceDetector.from_pretrained("nano")
    assert (det.cfg.nms_iou, det.cfg.top_k, det.cfg.keep_top_k, det.cfg.box_voting, det.long_side,
            det.refine_landmarks) == (DETECTOR.nms_iou, DETECTOR.top_k, DETECTOR.keep_top_k, DETECTOR.box_voting,
                                      DETECTOR.long_side, DETECTOR.refine_landmarks)
    assert PostProcessConfig().nms_iou == DETECTOR.nms_iou
    # the batch API: privacy first like the command line, even with a detector at its own 0.65
    job = AnonymizeJob(det, "nano")
    assert det.cfg.score_threshold == 0.65
    assert (job.score_threshold, job.second_pass, job.pad, job.mode, job.shape, job.hold) == (
        ANONYMIZE.score_threshold, ANONYMIZE.second_pass, ANONYMIZE.pad, ANONYMIZE.mode, ANONYMIZE.shape, ANONYMIZE.hold)
    assert job.settings["score_threshold"] == ANONYMIZE.score_threshold
    # the page: config.json carries them, camelCase
    page = site_config()["settings"]
    assert page == page_settings()
    assert page["detector"]["nmsIou"] == DETECTOR.nms_iou and page["detector"]["longSide"] == DETECTOR.long_side
    assert page["anonymize"]["scoreThreshold"] == ANONYMIZE.score_threshold
    assert page["anonymize"]["secondPass"] == ANONYMIZE.second_pass and page["anonymize"]["color"] == "#000000"
    assert page["passes"] == {"passArea": PASSES.pass_area, "finerPass": PASSES.finer_pass,
                              "coarseMinFace": PASSES.coarse_min_face, "fullPassAbove": PASSES.full_pass_above}
    assert page["detector"]["refineLandmarks"] == DETECTOR.refine_landmarks
    assert page["look"] == {"facePx": LOOK.face_px, "context": LOOK.context, "scoreThreshold": LOOK.score_threshold,
                            "minIou": LOOK.min_iou}
    assert set(asdict(ANONYMIZE)) == {k for k in asdict(ANONYMIZE)}  # every anonymiser setting reaches the page
    assert len(page["anonymize"]) == len(asdict(ANONYMIZE))


def test_the_batch_api_masks_what_anonymize_masks():
    """``AnonymizeJob`` on a detector built with its defaults finds the faces ``anonymize(image)``
    finds (recall first), not the fewer ones of the detector's 0.65."""
    img = read_image(EXAMPLE_IMAGE)
    _, [(_, masked)] = AnonymizeJob(FaceDetector.from_pretrained("nano"), "nano").image(img)
    np.testing.assert_array_equal(masked, anonymize(img))


def test_page_javascript_holds_no_default_number():
    from featherface.apps.webapp import WEB_DIR

    import re

    js = (WEB_DIR / "featherface.js").read_text()
    code = re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", "", js, flags=re.S))  # comments may describe them
    for literal in ("0.025", "0.15", "5000", "750", "640", "1.5", "24", "0.4", "[16, 32]"):
        assert literal not in code, literal


def test_a_bad_call_raises_at_once_and_a_bad_file_is_an_input_error(tmp_path):
    det = FaceDetector.from_pretrained("nano")
    for kwargs in ({"mode": "blurr"}, {"shape": "circle"}, {"pad": -1}, {"color": (300, 0, 0)}, {"score_threshold": 2},
                   {"second_pass": 10}, {"hold": -1}):
        with pytest.raises(UsageError):
            AnonymizeJob(det, "nano", **kwargs)
    with pytest.raises(UsageError, match="five finite"):
        from featherface import align_face

        align_face(np.zeros((50, 50, 3), np.uint8), np.zeros((3, 2)))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(InputError):
        read_image(bad)
    with pytest.raises(InputError):
        det.detect(np.zeros((0, 0, 3), np.uint8))
    assert issubclass(UsageError, ValueError) and issubclass(InputError, ValueError)  # older callers still catch them


def test_run_batch_refuses_a_bad_job_instead_of_failing_every_file(tmp_path):
    from featherface.apps.batch import list_sources, run_batch

    class BadJob:  # a job whose options only fail when a file is processed
        kind, settings = "anonymize", {}

        def image(self, image):
            anonymize(image, [], mode="blurr")

    with pytest.raises(UsageError, match="mode"):
        run_batch(BadJob(), list_sources(str(EXAMPLE_IMAGE)), tmp_path / "out")


def test_an_empty_image_is_an_input_error_not_a_crash():
    with pytest.raises(InputError, match="empty"):
        anonymize(np.zeros((0, 0, 3), np.uint8))


def test_sizes_a_user_sets_are_bounded_before_allocating():
    """A long side of 100,000 or a crop of 112,000 px asked for tens of GB; now one UsageError."""
    from featherface import align_face
    from featherface.core.settings import MAX_CROP_SIZE, MAX_LONG_SIDE

    det = FaceDetector.from_pretrained("nano")
    img = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(UsageError, match=str(MAX_LONG_SIDE)):
        det.detect(img, long_side=100_000)
    with pytest.raises(UsageError, match=str(MAX_CROP_SIZE)):
        align_face(img, np.array([[10, 10], [20, 10], [15, 15], [11, 20], [19, 20]], float), size=112_000)
