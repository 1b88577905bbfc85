"""Azure Functions (Python v2 programming model): a scikit-learn model behind an HTTP trigger."""

import json
import logging
import os

import azure.functions as func
import joblib

from sas import Shield

HERE = os.path.dirname(os.path.abspath(__file__))
model = joblib.load(os.path.join(HERE, "model.joblib"))
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

shield = Shield.from_config(os.path.join(HERE, "sas.toml"))
predict = shield.guard_model(model.predict)


@app.route(route="predict", methods=["POST"])
@shield.azure_function  # under @app.route, so the worker still indexes the function
def predict_http(req: func.HttpRequest) -> func.HttpResponse:
    features = req.get_json()["features"]
    label = int(predict([features])[0])
    logging.info("predicted %s", label)
    return func.HttpResponse(json.dumps({"label": label}), mimetype="application/json")
