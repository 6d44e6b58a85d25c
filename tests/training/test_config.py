"""The training options are declared once (training/config.py) and the CLI is generated from them."""
import argparse
from dataclasses import fields

import pytest

from featherface.models import ARCHITECTURES
from featherface.cli.train import add_arguments, config_from_flags
from featherface.training.config import ARCHS, SECTIONS, TrainConfig


def _parse(command: str, argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p, command)
    return p.parse_args(argv)


def test_every_option_has_one_flag_of_the_same_name_with_help():
    p = argparse.ArgumentParser()
    add_arguments(p, "distill")
    flags = {a.dest: a for a in p._actions if a.dest != "help"}
    names = {f.name for f in fields(TrainConfig)}
    assert set(flags) == names - {"mode"}  # mode is the subcommand
    for dest, action in flags.items():
        assert action.option_strings[0] == "--" + dest.replace("_", "-")
        assert action.help and "(default: " in action.help
    assert sum(len(fields(s)) for s in SECTIONS) == len(names)  # every field sits in exactly one section
    assert ARCHS == tuple(sorted(ARCHITECTURES))


def test_train_has_no_distillation_flags():
    p = argparse.ArgumentParser()
    add_arguments(p, "train")
    dests = {a.dest for a in p._actions}
    assert "teacher" not in dests and "mosaic_prob" not in dests and "alpha" not in dests
    assert {"images", "labels", "epochs", "ema_decay", "image_size", "min_negatives"} <= dests


def test_flags_override_the_base_and_only_given_flags_do():
    base = TrainConfig(epochs=7, alpha=0.5, images="pool")
    args = _parse("distill", ["--alpha", "0.9", "--no-channels-last", "--milestones", "3", "4", "--grad-clip", "0",
                              "--source-weights", "a=2", "b=0.5", "--pool-labels", "x.json", "y.json",
                              "--label-corrected"])
    cfg = config_from_flags(args, base, "distill")
    assert cfg.mode == "distill" and cfg.epochs == 7 and cfg.images == "pool"  # untouched
    assert cfg.alpha == 0.9 and cfg.channels_last is False and cfg.milestones == [3, 4]
    assert cfg.grad_clip is None  # 0: no clipping
    assert cfg.source_weights == {"a": 2.0, "b": 0.5} and cfg.pool_labels == ["x.json", "y.json"]
    assert cfg.label_corrected is True and cfg.label_corrected_full is False


@pytest.mark.parametrize("argv", [["--source-weights", "a=-1"], ["--source-weights", "a"], ["--epochs", "x"],
                                  ["--lr-schedule", "linear"], ["--ignore-below", "0.2"], ["--feature-adapter"]])
def test_bad_or_removed_flags_are_refused(argv):
    with pytest.raises(SystemExit):
        _parse("distill", argv)


def test_yaml_round_trip_and_unknown_keys(tmp_path):
    cfg = TrainConfig(mode="distill", images="p", teacher="t", milestones=[1, 2], source_weights={"a": 3.0})
    cfg.to_yaml(tmp_path / "c.yaml")
    assert TrainConfig.from_yaml(tmp_path / "c.yaml") == cfg
    (tmp_path / "old.yaml").write_text("images: p\nbox_kd_weight: 1.5\n")
    with pytest.raises(ValueError, match="unknown config keys.*box_kd_weight"):
        TrainConfig.from_yaml(tmp_path / "old.yaml")
