"""Loading a trained Rasa TensorFlow model for prediction without a training step.

Rasa 3.6's ``RasaModel.load`` builds the model's weights by *training it on one example*
(``model.fit``) before it reads the saved weights over them, so that the weights exist with the
right shapes. Tracing Keras' training function for that is most of a Rasa server's start: py-spy
on ``rasa run`` with our model (2026-12-07): 51% of the time to ready in ``fit``, 11 of 22 s on
a quiet machine, twice that beside other starting processes. Every start pays it: ``make run``,
each scale replica, each restart supervisord makes after a crash, and the test stacks.

TensorFlow checkpoints written by ``save_weights`` (Rasa saves in that format) restore by the
model's object graph, and a variable created after ``load_weights`` gets its saved value the
moment it is created. So for prediction the weights are restored first and then built by the
one prediction Rasa runs anyway to trace its prediction function; the training step is skipped.
The loaded model holds the same weights and predicts exactly what Rasa's loader gives
(tests/rasa_env/test_model_loading.py compares every weight and the prediction on the stored
example; test_nlu_heldout.py parses through an agent loaded this way). Loading to go on
training (``finetune_mode``), a model without a prediction example, or a checkpoint that does
not match the objects prediction builds takes Rasa's own path, and so does every load when
``ASKAGENCY_MODEL_LOADING=rasa`` (the baseline of bench/bench_startup.py; a way back should a
future Rasa model need it).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from bot.patching import rasa_original, replace

logger = logging.getLogger(__name__)

MODEL_LOADING_ENV = "ASKAGENCY_MODEL_LOADING"
LOADINGS = ("prediction", "rasa")


def model_loading() -> str:
    """``prediction`` (default: no training step) or ``rasa`` (Rasa's own loader)."""
    value = os.environ.get(MODEL_LOADING_ENV, "").strip() or LOADINGS[0]
    if value not in LOADINGS:
        raise ValueError(f"{MODEL_LOADING_ENV} must be one of {LOADINGS}, got {value!r}")
    return value


def install() -> bool:
    """Patches ``RasaModel.load`` (the base of DIET and TED); True when active."""
    if model_loading() == "rasa":
        return False
    try:
        import tensorflow as tf
        from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
        from rasa.utils.tensorflow.models import RasaModel
    except ImportError:
        return False
    original = rasa_original(RasaModel, "load", "prediction-only model loading")
    if original is None:
        return False

    def load(
        cls: type,
        model_file_name: str,
        model_data_example: Any,
        predict_data_example: Any = None,
        finetune_mode: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        def rasas() -> Any:
            return original.__func__(
                cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
                *args, **kwargs,
            )  # fmt: skip

        if finetune_mode or predict_data_example is None:
            return rasas()
        config = kwargs.get("config", {})
        model = cls(*args, **kwargs)
        # As Rasa compiles it: the same optimizer object graph and eager/graph choice.
        model.compile(
            optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
            run_eagerly=config.get(RUN_EAGERLY),
        )
        status = model.load_weights(model_file_name)
        model.run_inference(predict_data_example)  # creates the weights: restored on creation
        try:
            status.assert_existing_objects_matched()
        except AssertionError as exc:
            logger.warning("%s: weights not all restored (%s); loading as Rasa does", cls, exc)
            return rasas()
        status.expect_partial()  # the optimizer's slots and training-only layers stay unread
        return model

    replace(RasaModel, "load", original, classmethod(load))
    return True
