"""The same function with Powertools for AWS Lambda: the Shield as middleware, alerts through its Logger."""

import json
import os

import joblib
from aws_lambda_powertools import Logger

from sas import Shield

HERE = os.path.dirname(os.path.abspath(__file__))
model = joblib.load(os.path.join(HERE, "model.joblib"))
logger = Logger(service="iris")

shield = Shield.from_config(os.path.join(HERE, "sas.toml"))
predict = shield.guard_model(model.predict)


@logger.inject_lambda_context
@shield.aws_powertools
def handler(event, context):
    request = json.loads(event["body"]) if "body" in event else event
    label = int(predict([request["features"]])[0])
    logger.info("predicted", extra={"label": label})
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"label": label})}
