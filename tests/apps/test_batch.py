"""Batch runs: names never collide, a user's files are never overwritten, resumes never mix
settings, pixel bombs and truncated videos are per-file failures, nothing is passed over silently."""
import json
import struct
import zlib

import cv2
import numpy as np
import pytest

from featherface.cli import main
from tests.conftest import shared_file


def _records(out):
    return [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]


@pytest.fixture()
def small_crowd():
    return cv2.resize(cv2.imread(str(shared_file("images/crowd_baseball.jpg"))), (320, 195))


def test_glob_keeps_the_path_below_its_fixed_prefix(tmp_path, small_crowd):
    for d in ("a", "b"):
        (tmp_path / "in" / d).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "in" / d / "x.jpg"), np.roll(small_crowd, 10 if d == "b" else 0, axis=1))
    out = tmp_path / "out"
    assert main(["detect", str(tmp_path / "in" / "*" / "x.jpg"), "--output", str(out)]) == 0
    assert (out / "a" / "x.jpg").is_file() and (out / "b" / "x.jpg").is_file()


def test_a_users_files_and_a_finished_run_are_never_overwritten(tmp_path, small_crowd, capsys):
    cv2.imwrite(str(tmp_path / "p.jpg"), small_crowd)
    out = tmp_path / "out"
    out.mkdir()
    (out / "p.jpg").write_bytes(b"mine")
    assert main(["detect", str(tmp_path / "p.jpg"), "--output", str(out)]) == 2
    assert "did not write (e.g. p.jpg)" in capsys.readouterr().err and (out / "p.jpg").read_bytes() == b"mine"
    out2 = tmp_path / "out2"
    assert main(["detect", str(tmp_path / "p.jpg"), "--output", str(out2)]) == 0
    before = (out2 / "run.jsonl").read_bytes()
    assert main(["detect", str(tmp_path / "p.jpg"), "--output", str(out2)]) == 2  # a rerun without --resume
    assert "already holds a run" in capsys.readouterr().err and (out2 / "run.jsonl").read_bytes() == before
    assert main(["detect", str(tmp_path / "p.jpg"), "--output", str(out2), "--overwrite", "--no-draw"]) == 0
    assert not (out2 / "p.jpg").exists()  # the replaced run's annotated copy went with it
    assert [r["type"] for r in _records(out2)] == ["settings", "image"]


def test_resume_refuses_other_settings(tmp_path, small_crowd, capsys):
    cv2.imwrite(str(tmp_path / "p.jpg"), small_crowd)
    out = tmp_path / "out"
    assert main(["detect", str(tmp_path / "p.jpg"), "--output", str(out), "--no-draw"]) == 0
    assert main(["detect", str(tmp_path / "p.jpg"), "--output", str(out), "--no-draw", "--resume",
                 "--score-threshold", "0.95"]) == 2
    err = capsys.readouterr().err
    assert "score_threshold was 0.65" in err and err.count("\n") == 1
    assert main(["detect", str(tmp_path / "p.jpg"), "--output", str(out), "--no-draw", "--resume",
                 "--model", "nano-int8"]) == 2
    assert "--resume: model was 'nano'" in capsys.readouterr().err


def _png_header_only(path, w, h):
    """A tiny PNG whose header declares w x h pixels (a decompression bomb's signature)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
                     + chunk(b"IEND", b""))


def test_pixel_bomb_is_one_failed_file_and_resume_skips_it(tmp_path, small_crowd, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _png_header_only(src / "a_bomb.png", 36000, 36000)
    cv2.imwrite(str(src / "b_ok.jpg"), small_crowd)
    (src / "c_notes.txt").write_text("not an image")
    (src / "d_anim.gif").write_bytes(b"GIF89a")
    out = tmp_path / "out"
    assert main(["detect", str(src), "--output", str(out), "--no-draw"]) == 1
    res = json.loads((out / "run.json").read_text())
    (fail,) = res["failures"]
    assert "36000x36000" in fail["error"] and "from its header" in fail["error"]
    assert [r["file"].rsplit("/", 1)[1] for r in res["results"]] == ["b_ok.jpg"]
    assert sorted(s["file"].rsplit("/", 1)[1] for s in res["skipped"]) == ["c_notes.txt", "d_anim.gif"]
    assert all("unsupported type" in s["reason"] for s in res["skipped"])
    capsys.readouterr()
    assert main(["detect", str(src), "--output", str(out), "--no-draw", "--resume"]) == 1  # still a failure
    records = _records(out)
    assert len([r for r in records if r["type"] == "image"]) == 1  # no duplicate
    assert len([r for r in records if r["type"] == "error"]) == 1  # the bomb is not read again
    assert main(["detect", str(src), "--output", str(out), "--no-draw", "--resume", "--retry-failed"]) == 1
    assert len([r for r in _records(out) if r["type"] == "error"]) == 2  # retried on request, fails again
    assert len(json.loads((out / "run.json").read_text())["failures"]) == 1


def _video(path, frames, size=(320, 192)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for f in frames:
        w.write(cv2.resize(f, size))
    w.release()


def test_truncated_video_is_reported_and_leaves_no_partial_file(tmp_path, small_crowd):
    src = tmp_path / "in"
    src.mkdir()
    _video(src / "clip.avi", [np.roll(small_crowd, 3 * k, axis=1) for k in range(40)])
    data = (src / "clip.avi").read_bytes()
    (src / "clip.avi").write_bytes(data[: len(data) // 4])
    out = tmp_path / "out"
    assert main(["detect", str(src), "--output", str(out)]) == 1
    (fail,) = json.loads((out / "run.json").read_text())["failures"]
    assert "truncated or damaged video" in fail["error"]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_resumed_video_has_each_frame_once(tmp_path, small_crowd):
    src = tmp_path / "clip.avi"
    _video(src, [np.roll(small_crowd, 3 * k, axis=1) for k in range(6)])
    out = tmp_path / "out"
    assert main(["detect", str(src), "--output", str(out)]) == 0
    recs = _records(out)
    # an interruption in the middle of the video: its start and three frames written, no end record
    cut = [r for r in recs if r["type"] != "video"][: 2 + 3]
    (out / "run.jsonl").write_text("".join(json.dumps(r) + "\n" for r in cut))
    (out / "clip.avi.mp4").unlink()
    assert main(["detect", str(src), "--output", str(out), "--resume"]) == 0
    (rec,) = json.loads((out / "run.json").read_text())["results"]
    assert [f["frame"] for f in rec["frames"]] == list(range(6))


def test_unwritable_output_fails_before_any_work(tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        target = tmp_path / "file"
        target.write_text("x")
        out = target / "sub"  # a folder below a file cannot be created, even by root
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out = ro / "out"
    assert main(["detect", "--example", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot write to the output folder" in err and err.count("\n") == 1


def test_anonymize_and_crop_end_to_end(tmp_path, capsys):
    img = shared_file("images/small_pair.jpg")
    out = tmp_path / "anon"
    assert main(["anonymize", str(img), "--output", str(out), "--mode", "solid"]) == 0
    (rec,) = json.loads((out / "run.json").read_text())["results"]
    assert len(rec["faces"]) >= 2
    b = cv2.imread(rec["output"])
    for f in rec["faces"]:
        x1, y1, x2, y2 = (int(v) for v in f["box"])
        cy, cx = (y1 + y2) // 2, (x1 + x2) // 2
        assert b[cy, cx].max() < 30  # the face centre is filled black (JPEG noise aside)
    crops = tmp_path / "crops"
    assert main(["crop", str(img), "--output", str(crops), "--align"]) == 0
    (rec,) = json.loads((crops / "run.json").read_text())["results"]
    assert len(rec["outputs"]) == len(rec["faces"]) >= 2
    assert all(cv2.imread(p).shape == (112, 112, 3) for p in rec["outputs"])


def test_anonymized_video_keeps_frames_and_audio(tmp_path, small_crowd):
    ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="the [video] extra is not installed")
    import subprocess

    silent = tmp_path / "silent.avi"
    _video(silent, [np.roll(small_crowd, 2 * k, axis=1) for k in range(12)])
    clip = tmp_path / "in" / "clip.mp4"
    clip.parent.mkdir()
    subprocess.run([ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(silent), "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1.2", "-c:v", "libx264", "-c:a", "aac", "-shortest", str(clip)],
                   check=True)
    out = tmp_path / "out"
    assert main(["anonymize", str(clip), "--output", str(out)]) == 0
    (rec,) = json.loads((out / "run.json").read_text())["results"]
    from featherface.apps.video import has_audio

    cap = cv2.VideoCapture(rec["output"])
    n = 0
    while cap.read()[0]:
        n += 1
    assert rec["num_frames"] == n == 12
    assert has_audio(clip) and has_audio(rec["output"])


def test_parallel_workers_give_the_same_records_in_the_same_order(tmp_path, small_crowd):
    """--workers 3 (threads sharing one onnxruntime session) writes the records and images that one
    worker writes, in the listing's order, with a damaged file among them."""
    src = tmp_path / "in"
    src.mkdir()
    for k in range(7):
        cv2.imwrite(str(src / f"img{k}.jpg"), np.roll(small_crowd, 15 * k, axis=1))
    data = (src / "img3.jpg").read_bytes()
    (src / "img3.jpg").write_bytes(data[: len(data) // 2])
    runs = {}
    for n in (1, 3):
        out = tmp_path / f"out{n}"
        assert main(["detect", str(src), "--output", str(out), "--workers", str(n)]) == 1
        runs[n] = [{k: v for k, v in r.items() if k not in ("output", "max_pixels")} for r in _records(out)]
        assert [r.get("file", "").rsplit("/", 1)[-1] for r in runs[n][1:]] == [f"img{k}.jpg" for k in range(7)]
    strip = lambda recs: [{k: v for k, v in r.items() if k != "workers"} for r in recs]
    assert strip(runs[3]) == strip(runs[1])
    for k in (0, 6):
        assert (tmp_path / "out3" / f"img{k}.jpg").read_bytes() == (tmp_path / "out1" / f"img{k}.jpg").read_bytes()


def test_video_frames_detected_ahead_give_the_same_records(tmp_path, small_crowd):
    src = tmp_path / "clip.avi"
    _video(src, [np.roll(small_crowd, 8 * k, axis=1) for k in range(12)])
    frames = {}
    for n in (1, 3):
        out = tmp_path / f"out{n}"
        assert main(["anonymize", str(src), "--output", str(out), "--workers", str(n)]) == 0
        frames[n] = [r for r in _records(out) if r["type"] == "frame"]
    assert len(frames[1]) == 12 and frames[3] == frames[1]


def test_output_folder_equal_to_the_source_is_refused_and_left_alone(tmp_path):
    """--overwrite into the source folder itself used to remove the earlier run and process nothing, exit 0."""
    import shutil

    from featherface.apps.batch import RunError, list_sources, run_batch
    from featherface.apps.jobs import DetectJob
    from featherface.core.detector import FaceDetector
    from featherface.core.weights import EXAMPLE_IMAGE

    src = tmp_path / "photos"
    src.mkdir()
    shutil.copy(EXAMPLE_IMAGE, src / "a.jpg")
    job = DetectJob(FaceDetector.from_pretrained("nano"), "nano")
    for overwrite in (False, True):
        with pytest.raises(RunError, match="inside the output folder"):
            run_batch(job, list_sources(str(src)), src, overwrite=overwrite)
    assert sorted(p.name for p in src.iterdir()) == ["a.jpg"]


def _records_per_file(out):
    import json

    recs = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines() if line.strip()]
    files = [r["file"] for r in recs if r.get("type") in ("image", "video", "error")]
    return {f: files.count(f) for f in files}


def test_resume_redoes_outputs_written_just_before_an_interruption(tmp_path):
    """An output with no record (written in the instant before Ctrl-C, SIGTERM or kill -9), and a
    video's hidden partial file, are this run's unfinished work on --resume: done again, never
    refused as foreign files, never recorded twice."""
    import shutil

    from featherface.apps.batch import list_sources, run_batch
    from featherface.apps.jobs import DetectJob
    from featherface.core.detector import FaceDetector
    from featherface.core.weights import EXAMPLE_IMAGE

    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    for k in range(3):
        shutil.copy(EXAMPLE_IMAGE, src / f"p{k}.jpg")
    job = DetectJob(FaceDetector.from_pretrained("nano"), "nano")
    run_batch(job, list_sources(str(src)), out)
    lines = (out / "run.jsonl").read_text().splitlines(keepends=True)
    (out / "run.jsonl").write_text("".join(lines[:-1]))  # the last file's output is there, its record is not
    (out / ".clip.mp4.4242.partial.mp4").write_bytes(b"half a video")
    (out / ".p1.jpg.x7k2q9.tmp").write_bytes(b"half an image")  # atomic_write's, cut by kill -9
    (out / "mine.txt").write_text("a user's file")
    with pytest.raises(ValueError, match="mine.txt"):  # a file of nobody's run is still refused
        run_batch(job, list_sources(str(src)), out, resume=True)
    (out / "mine.txt").unlink()
    result = run_batch(job, list_sources(str(src)), out, resume=True)
    assert result.processed == 1 and result.already_done == 2
    assert _records_per_file(out) == {str(src / f"p{k}.jpg"): 1 for k in range(3)}
    assert not (out / ".clip.mp4.4242.partial.mp4").exists() and not (out / ".p1.jpg.x7k2q9.tmp").exists()


def _detect_in_background(tmp_path, workers: int, done: int, files: int = 120):
    """``featherface detect`` on ``files`` copies of the example photo in a subprocess, returned once
    ``done`` of them have records (or after 60 s): ``(source folder, output folder, command, process)``."""
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from featherface.core.weights import EXAMPLE_IMAGE

    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    for k in range(files):
        shutil.copy(EXAMPLE_IMAGE, src / f"p{k:03d}.jpg")
    cmd = [sys.executable, "-m", "featherface", "-q", "detect", str(src), "--output", str(out), "--workers", str(workers)]
    # a shell's background job ignores SIGINT and its children inherit that (then Python installs no
    # KeyboardInterrupt handler): the child gets the default disposition, as under a terminal
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if (out / "run.jsonl").is_file() and (out / "run.jsonl").read_text().count('"type": "image"') >= done:
            break
        time.sleep(0.02)
    return src, out, cmd, proc


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupted_run_resumes_to_every_file_once(tmp_path, sig):
    """A real process interrupted mid-run, then --resume: exit 0, every file recorded exactly once."""
    import signal
    import subprocess

    src, out, cmd, proc = _detect_in_background(tmp_path, workers=2, done=5)  # interrupted once some files are done
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; rerun with --resume" in err, (proc.returncode, err)  # the same for both
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert _records_per_file(out) == {str(src / f"p{k:03d}.jpg"): 1 for k in range(120)}


def test_one_run_at_a_time_per_output_folder_and_kill_9_leaves_no_stale_lock(tmp_path):
    import signal

    from featherface.apps.batch import RunError, list_sources, run_batch
    from featherface.apps.jobs import DetectJob
    from featherface.core.detector import FaceDetector

    src, out, _, proc = _detect_in_background(tmp_path, workers=1, done=1)
    job = DetectJob(FaceDetector.from_pretrained("nano"), "nano")
    with pytest.raises(RunError, match=f"another run \\(pid {proc.pid}\\)"):
        run_batch(job, list_sources(str(src)), out, resume=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    result = run_batch(job, list_sources(str(src)), out, resume=True)  # the kernel released the dead run's lock
    assert result.already_done + result.processed == 120
    assert _records_per_file(out) == {str(src / f"p{k:03d}.jpg"): 1 for k in range(120)}


def test_kill_9_mid_video_then_resume_records_each_frame_once(tmp_path, small_crowd):
    """A real process killed (SIGKILL) while writing a video: its hidden partial file and its
    half-written frame records are this run's unfinished work; --resume redoes the video and
    run.jsonl then holds one start, each frame once and one video record (it held the killed
    attempt's frames as well)."""
    pytest.importorskip("imageio_ffmpeg", reason="the [video] extra is not installed")
    import signal
    import subprocess
    import sys
    import time

    from featherface.apps.video import read_frames

    src = tmp_path / "clip.avi"
    _video(src, [np.roll(small_crowd, 2 * k, axis=1) for k in range(90)])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "featherface", "-q", "detect", str(src), "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "run.jsonl").is_file() and (out / "run.jsonl").read_text().count('"type": "frame"') >= 10:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert '"type": "video"' not in (out / "run.jsonl").read_text()  # killed mid-video
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    recs = _records(out)
    assert [r["type"] for r in recs].count("start") == 1 and [r["type"] for r in recs].count("video") == 1
    assert [r["frame"] for r in recs if r["type"] == "frame"] == list(range(90))
    assert not list(out.glob(".*.partial.mp4"))
    assert sum(1 for _ in read_frames(out / "clip.avi.mp4")) == 90
    (rec,) = json.loads((out / "run.json").read_text())["results"]
    assert [f["frame"] for f in rec["frames"]] == list(range(90))


def test_an_encoder_error_is_one_failure_line_and_the_run_goes_on(tmp_path, small_crowd):
    """ffmpeg dying while a video is written (a broken pipe, its log after it) is that video's one
    failure line, its partial output removed; the next file is still processed."""
    from featherface.apps.batch import list_sources, run_batch
    from featherface.apps.jobs import DetectJob
    from featherface.core.detector import FaceDetector

    src = tmp_path / "in"
    src.mkdir()
    _video(src / "clip.avi", [np.roll(small_crowd, 3 * k, axis=1) for k in range(4)])
    cv2.imwrite(str(src / "photo.jpg"), small_crowd)

    class DyingEncoder:
        def __init__(self, path, fps, size, source):
            self.tmp = path.with_name(f".{path.name}.1.partial.mp4")
            self.tmp.write_bytes(b"half")

        def write(self, frame):
            raise BrokenPipeError("[Errno 32] Broken pipe\n\nFFMPEG COMMAND:\nffmpeg -y ...\nFFMPEG STDERR OUTPUT:\n...")

        def abort(self):
            self.tmp.unlink()

    out = tmp_path / "out"
    result = run_batch(DetectJob(FaceDetector.from_pretrained("nano"), "nano"), list_sources(str(src)), out,
                       video_writer=DyingEncoder)
    assert result.processed == 1 and result.failed == 1
    (failure,) = json.loads((out / "run.json").read_text())["failures"]
    assert failure["error"] == f"{src / 'clip.avi'}: [Errno 32] Broken pipe"
    assert not list(out.glob(".*partial*")) and (out / "photo.jpg").is_file()


def test_odd_sized_video_is_written_padded_to_an_even_size(tmp_path, small_crowd):
    """H.264 4:2:0 needs even sizes: a 321x193 video failed with a broken pipe; now one black
    column and row are added (nothing of the picture is cut)."""
    ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="the [video] extra is not installed")
    import subprocess

    from featherface.apps.video import read_frames

    src = tmp_path / "in"
    src.mkdir()
    subprocess.run([ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=321x193:rate=10", "-t", "0.6",
                    "-c:v", "libx264", "-pix_fmt", "yuv444p", str(src / "odd.mp4")], check=True)  # 4:4:4 allows odd sizes
    assert read_frames(src / "odd.mp4").size == (321, 193)
    out = tmp_path / "out"
    assert main(["anonymize", str(src / "odd.mp4"), "--output", str(out)]) == 0
    frames = list(read_frames(out / "odd.mp4"))
    assert len(frames) == 6 and frames[0].shape[:2] == (194, 322)
    pad_col, pad_row = frames[0][:, -1], frames[0][-1, :]  # black, but for a little 4:2:0 chroma bleed
    assert np.median(pad_col) < 8 and np.median(pad_row) < 8 and np.median(frames[0][:-1, :-1]) > 40


def test_variable_frame_rate_video_keeps_its_duration_and_audio(tmp_path):
    """A phone-style video whose frame rate varies (mean 20.4 fps, base 30: two seconds at 30 fps,
    two at 6) came out a half longer than its audio (written at the mean rate); now it is read and
    written at the base rate: the same duration as the source and its audio."""
    ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="the [video] extra is not installed")
    import subprocess

    from featherface.apps.video import read_frames

    src = tmp_path / "in"
    src.mkdir()
    subprocess.run([ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30:duration=8",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=8",
                    "-vf", r"select='lt(mod(t\,4)\,2)+not(mod(n\,5))'", "-fps_mode", "vfr", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(src / "phone.mp4")], check=True)
    frames, secs = ffmpeg.count_frames_and_secs(str(src / "phone.mp4"))
    assert frames < 0.8 * 30 * secs  # really variable: fewer frames than the base rate gives
    reader = read_frames(src / "phone.mp4")
    assert reader.variable and reader.fps == 30.0
    out = tmp_path / "out"
    assert main(["-q", "anonymize", str(src / "phone.mp4"), "--output", str(out)]) == 0
    n, duration = ffmpeg.count_frames_and_secs(str(out / "phone.mp4"))
    assert abs(duration - secs) < 0.15 and abs(n - 30 * secs) <= 3
    record = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()
              if json.loads(line).get("type") == "video"][0]
    assert record["fps"] == 30.0 and record["num_frames"] == n

    def described(path):  # (container duration in s, has an AAC track)
        text = subprocess.run([ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                              text=True).stderr
        h, m, sec = text.split("Duration: ")[1].split(",")[0].split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec), "Audio: aac" in text

    (before, audio_before), (after, audio_after) = described(src / "phone.mp4"), described(out / "phone.mp4")
    assert audio_before and audio_after and abs(after - before) < 0.15  # audio and video end together, as before


def test_a_full_disk_stops_the_run_in_one_line_and_resume_finishes_it(tmp_path, monkeypatch, capsys):
    """ENOSPC (injected where the outputs are written) gave chained tracebacks, half a JSON line and
    a run that could not be resumed."""
    import errno
    import shutil

    import featherface.apps.batch as batch
    from featherface.core.weights import EXAMPLE_IMAGE

    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    for k in range(4):
        shutil.copy(EXAMPLE_IMAGE, src / f"p{k}.jpg")
    real = batch.atomic_write_image
    calls = []

    def fills_up(path, image, *a, **kw):
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, image, *a, **kw)
    monkeypatch.setattr(batch, "atomic_write_image", fills_up)
    assert main(["detect", str(src), "--output", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left" in err[0] and "--resume" in err[0] and "Traceback" not in err[0]
    monkeypatch.setattr(batch, "atomic_write_image", real)  # space freed
    assert main(["detect", str(src), "--output", str(out), "--resume"]) == 0
    assert _records_per_file(out) == {str(src / f"p{k}.jpg"): 1 for k in range(4)}
