"""The training scripts run and are reproducible (a few steps; the real training is documented in the README and benchmarks/RESULTS.md)."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from halluguard.lab import train_captioner, train_detector, world  # noqa: E402


def _train(out, seed=0):
    args = train_captioner.parse_args([
        "--seed", str(seed), "--out", str(out), "--pool", "64", "--batch", "8", "--stage1-steps", "2",
        "--stage2-steps", "2", "--val", "0", "--save-state", "--log-every", "1"])
    return train_captioner.train(args)


def test_captioner_training_smoke_and_determinism(tmp_path):
    torch_threads = torch.get_num_threads()
    log = _train(tmp_path / "a")
    assert torch.get_num_threads() == 1  # the script fixes its thread count
    torch.set_num_threads(torch_threads)
    assert len(log["stage1"]) == 2 and len(log["stage2"]) == 2
    assert json.loads((tmp_path / "a" / "train_log.json").read_text())["stage2"] == log["stage2"]
    _train(tmp_path / "b")
    torch.set_num_threads(torch_threads)
    a, b = torch.load(tmp_path / "a" / "state.pt"), torch.load(tmp_path / "b" / "state.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from transformers import LlavaForConditionalGeneration

    assert LlavaForConditionalGeneration.from_pretrained(tmp_path / "a").dtype == torch.float16


def test_patch_labels_mark_the_patches_an_object_covers():
    scene = world.Scene([world.Obj("star", "blue", 12, 12, 16)], (0.2, 0.2, 0.2), (0, 0), 0.0, 0)
    packed = world.pack([scene])
    t = {k: torch.as_tensor(v) for k, v in packed.items()}
    _, coverage = world.render_packed(packed, torch.zeros(1, 3, 64, 64))
    labels = train_captioner.patch_labels(coverage, t)
    star, blue = world.KINDS.index("star"), len(world.KINDS) + world.COLOURS.index("blue")
    on = labels[0, :, star] > 0
    assert on.sum() >= 3 and bool(on[9])  # patch (1, 1) holds the centre
    assert torch.equal(labels[0, :, blue] > 0, on) and not bool(labels[0, 63].any())


def test_detector_dataset_is_in_yolo_format(tmp_path):
    yaml = train_detector.write_dataset(tmp_path, seed=0, n_train=6, n_val=4)
    assert "names:" in yaml.read_text() and "9: diamond" in yaml.read_text()
    labels = sorted((tmp_path / "labels" / "train").glob("*.txt"))
    assert len(labels) == 6 and len(list((tmp_path / "images" / "val").glob("*.png"))) == 4
    for path in labels:
        for row in path.read_text().split("\n")[:-1]:
            cls, *box = row.split()
            assert 0 <= int(cls) < 10 and all(0 < float(v) <= 1 for v in box)


def test_scrub_checkpoint_drops_machine_paths(tmp_path):
    import shutil

    from halluguard.lab import DETECTOR

    path = tmp_path / "d.pt"
    shutil.copy(DETECTOR, path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    checkpoint["git"] = {"root": "/somewhere/private"}
    checkpoint["train_args"]["data"] = "/somewhere/private/data.yaml"
    torch.save(checkpoint, path)
    train_detector.scrub_checkpoint(path)
    assert b"/somewhere/private" not in path.read_bytes()
    assert torch.load(path, map_location="cpu", weights_only=False)["train_args"]["data"] == "data.yaml"
