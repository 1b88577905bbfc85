"""Google Cloud Functions: a scikit-learn model as an HTTP function and a CloudEvent function."""

import logging
import os

import functions_framework
import joblib

from sas import Shield

HERE = os.path.dirname(os.path.abspath(__file__))
model = joblib.load(os.path.join(HERE, "model.joblib"))

shield = Shield.from_config(os.path.join(HERE, "sas.toml"))
predict = shield.guard_model(model.predict)


@functions_framework.http
@shield.gcp_function
def predict_http(request):
    features = request.get_json(force=True)["features"]
    label = int(predict([features])[0])
    logging.info("predicted %s", label)
    return {"label": label}


@functions_framework.cloud_event
@shield.gcp_function
def predict_event(cloud_event):
    label = int(predict([cloud_event.data["features"]])[0])
    logging.info("event %s predicted %s", cloud_event["id"], label)
