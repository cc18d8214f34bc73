"""The lab's world: seeded scenes, the co-occurrence prior, captions, rendering and ground truth."""

from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from halluguard.lab import scoring, world  # noqa: E402


def test_scene_depends_only_on_seed_split_and_index():
    a = world.make_scenes(3, "test", 6, prior_breaking_share=0.5)  # 3 prior-breaking, then natural 0..2
    b = world.make_scenes(3, "test", 10, prior_breaking_share=0.3)  # 3 prior-breaking, then natural 0..6
    assert a[:5] == b[:5]
    assert a[0].prior_break is not None and a[3].prior_break is None
    assert world.make_scene(3, "test", 7) == world.make_scene(3, "test", 7)
    assert world.make_scene(3, "test", 7) != world.make_scene(4, "test", 7)
    assert world.make_scene(3, "test", 7) != world.make_scene(3, "train", 7)


def test_natural_scenes_carry_the_prior():
    scenes = world.make_scenes(0, "train", 3000)
    for a, b in world.PAIRS:
        with_a = [s for s in scenes if a in s.kinds]
        p = sum(b in s.kinds for s in with_a) / len(with_a)
        assert len(with_a) > 300 and 0.82 <= p <= 0.93, (a, b, p)
        companions = [o for s in with_a for o in s.objects if o.kind == b and o.companion]
        hidden = sum(o.small or o.faint for o in companions) / len(companions)
        assert hidden > 0.6  # B that accompanies A is mostly small or faint
    sizes = Counter(len(s.objects) for s in scenes)
    assert set(sizes) <= {1, 2, 3, 4} and min(sizes.values()) > 300
    objects = [o for s in scenes for o in s.objects]
    assert 0.2 <= np.mean([o.small for o in objects]) <= 0.4
    assert 0.08 <= np.mean([o.faint for o in objects]) <= 0.3


def test_prior_breaking_scenes_have_a_without_b():
    for scene in world.make_scenes(1, "test", 200, prior_breaking_share=1.0):
        a, b = scene.prior_break
        assert a in scene.kinds and b not in scene.kinds


def test_caption_lists_every_object_and_parses_back():
    for scene in world.make_scenes(2, "test", 300, prior_breaking_share=0.5):
        text = world.caption(scene)
        assert text.startswith("there ") and text.endswith(".")
        found = scoring.mentions(text)
        assert sum(m.count for m in found) == len(scene.objects)
        assert {m.kind for m in found} == scene.kinds
        assert Counter((m.kind, m.colour, m.small) for m in found for _ in range(m.count)) == Counter(
            (o.kind, o.colour, o.small) for o in scene.objects)


def test_caption_grammar():
    objects = [world.Obj("circle", "orange", 10, 10, 15)]
    scene = world.Scene(objects, (0.2, 0.2, 0.2), (0, 0), 0.05, 0)
    assert world.caption(scene) == "there is an orange circle."
    scene.objects = objects + [world.Obj("cross", "red", 40, 40, 8), world.Obj("cross", "red", 50, 20, 9)]
    assert world.caption(scene) == "there are an orange circle and two small red crosses."


def test_render_images_boxes_and_determinism():
    scenes = world.make_scenes(0, "test", 16, prior_breaking_share=0.5)
    images, truths = world.render(scenes)
    again, _ = world.render(scenes)
    assert images.shape == (16, 3, 64, 64) and torch.equal(images, again)
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    for scene, truth in zip(scenes, truths):
        assert truth["caption"] == world.caption(scene)
        for obj, gt in zip(scene.objects, truth["objects"]):
            x1, y1, x2, y2 = gt["box"]
            assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64
            assert x1 - 1 <= obj.cx <= x2 + 1 and y1 - 1 <= obj.cy <= y2 + 1
            assert max(x2 - x1, y2 - y1) <= obj.size + 2
    pil = world.to_pil(images[:2])
    assert pil[0].size == (64, 64) and pil[0].mode == "RGB"


def test_objects_are_visible_against_the_background():
    scene = world.Scene([world.Obj("square", "red", 32, 32, 20)], (0.2, 0.2, 0.2), (0, 0), 0.0, 0)
    images, truths = world.render([scene])
    assert images[0, 0, 32, 32] > 0.8 and images[0, 0, 2, 2] < 0.25
    assert truths[0]["objects"][0]["box"] == pytest.approx([22, 22, 42, 42], abs=2)
