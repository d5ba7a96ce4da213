"""Test of defi1.realtime.demo (Part 3 of ``defi1 demo``) and its objectness prior."""

import json

import numpy as np
import pytest

from defi1.realtime.demo import run_realtime_demo, set_objectness_prior
from defi1.realtime.video import video_properties


def test_objectness_prior_sets_only_objectness_biases(mini_model):
    import keras

    from defi1.yolo.layers import yolo_heads

    model = keras.models.clone_model(mini_model)
    model.set_weights(mini_model.get_weights())
    set_objectness_prior(model, probability=0.01)
    for head in yolo_heads(model):
        kernel, bias = head.input._keras_history[0].get_weights()
        per_anchor = bias.reshape(-1, 5 + head.num_classes)
        np.testing.assert_allclose(per_anchor[:, 4], np.log(0.01 / 0.99), rtol=1e-6)
        original = yolo_heads(mini_model)[head.head_index].input._keras_history[0].get_weights()[1]
        np.testing.assert_array_equal(np.delete(per_anchor, 4, axis=1),
                                      np.delete(original.reshape(-1, 5 + head.num_classes), 4, axis=1))


@pytest.mark.smoke
def test_smoke_realtime_demo(tmp_path):
    outcome = run_realtime_demo(tmp_path, smoke=True, input_size=128)
    assert outcome["metrics"]["frames"] == 20 and outcome["metrics"]["fps_end_to_end"] > 0
    assert video_properties(tmp_path / "annotated.mp4")["frames"] == 20
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["metrics"]["fps_model"] == outcome["metrics"]["fps_model"]
    assert (tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"
