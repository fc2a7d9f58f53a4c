"""Peer: the common FastAPI + TensorFlow server, calling Keras `model.predict()` per request.

    MODEL_PATH=/path/model.keras uvicorn fastapi_tf_server:app

GET /health answers 200 once the model is loaded (that is when uvicorn starts listening).
"""

import os
from contextlib import asynccontextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from pydantic import BaseModel  # noqa: E402

state = {}


@asynccontextmanager
async def lifespan(app):
    state["model"] = keras.saving.load_model(os.environ["MODEL_PATH"], compile=False)
    yield


app = FastAPI(lifespan=lifespan)


class PredictRequest(BaseModel):
    instances: list[list[float]]


@app.get("/health")
def health():
    return {"ready": "model" in state}


@app.post("/predict")
def predict(request: PredictRequest):
    probabilities = state["model"].predict(
        np.asarray(request.instances, dtype=np.float32), verbose=0
    )
    return {
        "predictions": probabilities.argmax(axis=1).tolist(),
        "probabilities": probabilities.tolist(),
    }
