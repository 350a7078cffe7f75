"""bot.model_loading: the trained DIET classifier loaded without Rasa's one-example training step
holds the same weights and predicts exactly what Rasa's loader gives; only finetuning takes
Rasa's training step. Uses the model `make train` wrote to var/models (skipped when there is
none yet). tests/rasa_env/test_nlu_heldout.py parses through a whole agent loaded this way."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from rasa.utils.tensorflow.models import RasaModel

import bot  # noqa: F401 - importing the package installs the patches
from bot import model_loading
from tests.services import unavailable

MODEL = Path(__file__).resolve().parents[2] / "var" / "models" / "askagency.tar.gz"


@dataclass
class _Loaded:
    model: Any  # the DIET RasaModel
    predict_example: Any  # its stored text-only example, as Rasa's loader builds it
    fits: int  # Keras ``Model.fit`` calls the load made


def _load_diet(folder: Path, finetuning: bool) -> _Loaded:
    """DIET from the trained archive, as Rasa's graph loads it (``finetuning``: as
    ``rasa train --finetune`` does), counting the training steps it takes."""
    if not MODEL.exists():
        unavailable("no trained model: run `make train`")
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier
    from rasa.shared.nlu.constants import TEXT
    from rasa.utils.tensorflow.model_data import RasaModelData

    storage, metadata = LocalModelStorage.from_model_archive(folder, MODEL)
    schema = metadata.predict_schema
    node = next(node for node in schema.nodes.values() if node.uses is DIETClassifier)
    context = ExecutionContext(schema, metadata.model_id, is_finetuning=finetuning)
    config = {**DIETClassifier.get_default_config(), **node.config}
    fits = 0
    real_fit = tf.keras.Model.fit

    def counting_fit(model: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal fits
        fits += 1
        return real_fit(model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf.keras.Model, "fit", counting_fit)
        classifier = DIETClassifier.load(config, storage, node.resource, context)
    with storage.read_from(node.resource) as path:
        data_example = DIETClassifier._load_from_files(path)[3]
    example = RasaModelData(data={k: v for k, v in data_example.items() if TEXT in k})
    return _Loaded(classifier.model, example, fits)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[_Loaded, _Loaded]]:
    """(ours, Rasa's): the prediction load, and the finetuning load, which keeps Rasa's."""
    folder = tmp_path_factory.mktemp("diet")
    yield _load_diet(folder / "ours", False), _load_diet(folder / "rasas", True)


def test_installed_when_rasa_is_importable() -> None:
    assert model_loading.install() is True
    assert RasaModel.load.__func__.__module__ == "bot.model_loading"


def test_only_finetuning_takes_the_training_step(loaded: tuple[_Loaded, _Loaded]) -> None:
    ours, rasas = loaded
    assert ours.fits == 0
    assert rasas.fits == 1  # finetuning needs the optimizer's state, which that step restores


def test_same_predictions_and_weights_as_rasas_loader(loaded: tuple[_Loaded, _Loaded]) -> None:
    ours, rasas = loaded
    predicted = ours.model.run_inference(ours.predict_example)
    expected = rasas.model.run_inference(rasas.predict_example)  # Rasa's loader ends with this
    assert predicted.keys() == expected.keys()
    for key in expected:
        if isinstance(expected[key], np.ndarray):
            assert np.array_equal(predicted[key], expected[key]), key
    # Every weight, to the last bit (after a prediction, which masks DIET's sparse kernels).
    our_weights = {v.name: v.numpy() for v in ours.model.weights}
    rasas_weights = {v.name: v.numpy() for v in rasas.model.weights}
    assert our_weights.keys() == rasas_weights.keys()
    assert len(our_weights) > 20
    assert [k for k in our_weights if not np.array_equal(our_weights[k], rasas_weights[k])] == []


def test_the_setting_chooses_rasas_loader_and_refuses_unknown_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(model_loading.MODEL_LOADING_ENV, "rasa")
    monkeypatch.setattr(RasaModel, "load", RasaModel.load)  # restored afterwards
    assert model_loading.install() is False
    monkeypatch.setenv(model_loading.MODEL_LOADING_ENV, "fast")
    with pytest.raises(ValueError, match="ASKAGENCY_MODEL_LOADING must be one of"):
        model_loading.install()
    monkeypatch.setenv(model_loading.MODEL_LOADING_ENV, "")
    assert model_loading.install() is True
