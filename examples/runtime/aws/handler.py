"""AWS Lambda: a scikit-learn model behind API Gateway / a Function URL, protected by Serverless AI Shield."""

import json
import logging
import os

import joblib

from sas import Shield

HERE = os.path.dirname(os.path.abspath(__file__))
model = joblib.load(os.path.join(HERE, "model.joblib"))  # heavy imports and the model load come first

shield = Shield.from_config(os.path.join(HERE, "sas.toml"))  # then the Shield: from here on is run time
predict = shield.guard_model(model.predict)
logger = logging.getLogger(__name__)


@shield.aws_lambda
def handler(event, context):
    request = json.loads(event["body"]) if "body" in event else event
    label = int(predict([request["features"]])[0])
    logger.info("predicted %s", label)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"label": label})}
