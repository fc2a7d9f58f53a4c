"""Peer: the common FastAPI + TensorFlow server, calling the Keras model per request.

    MODEL_PATH=/path/model.keras [KERAS_CALL=predict|tf.function] uvicorn fastapi_tf_server:app

KERAS_CALL=predict (default) calls ``model.predict()``, what most tutorials serve with;
KERAS_CALL=tf.function calls the model through a ``tf.function`` traced once at load for
[None, features] float32 inputs, the fast way to serve Keras without leaving TensorFlow.
GET /health answers 200 once the model is loaded (that is when uvicorn starts listening).
"""

import os
from contextlib import asynccontextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from pydantic import BaseModel  # noqa: E402

CALLS = ("predict", "tf.function")
state = {}


def load(path: str, call: str):
    """The model as a function float32 [rows, features] -> probabilities (numpy)."""
    if call not in CALLS:
        raise SystemExit(f"KERAS_CALL={call!r}; allowed: {', '.join(CALLS)}")
    model = keras.saving.load_model(path, compile=False)
    if call == "predict":
        return lambda x: model.predict(x, verbose=0)
    signature = [tf.TensorSpec((None, model.input_shape[-1]), tf.float32)]
    traced = tf.function(lambda x: model(x, training=False), input_signature=signature)
    return lambda x: traced(x).numpy()


@asynccontextmanager
async def lifespan(app):
    state["predict"] = load(os.environ["MODEL_PATH"], os.environ.get("KERAS_CALL", "predict"))
    yield


app = FastAPI(lifespan=lifespan)


class PredictRequest(BaseModel):
    instances: list[list[float]]


@app.get("/health")
def health():
    return {"ready": "predict" in state}


@app.post("/predict")
def predict(request: PredictRequest):
    probabilities = state["predict"](np.asarray(request.instances, dtype=np.float32))
    return {
        "predictions": probabilities.argmax(axis=1).tolist(),
        "probabilities": probabilities.tolist(),
    }
