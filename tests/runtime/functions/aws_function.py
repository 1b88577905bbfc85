import json
import os

import actions
import boto3
import joblib

from sas import Shield

HERE = os.path.dirname(os.path.abspath(__file__))
model = joblib.load(os.path.join(HERE, "model.joblib"))
sts = boto3.client("sts", endpoint_url=os.environ.get("STS_ENDPOINT"), region_name="us-east-1")

shield = Shield.from_config(os.path.join(HERE, "sas.toml"))
predict = shield.guard_model(model.predict)


@shield.aws_lambda
def handler(event, context):
    request = json.loads(event["body"]) if "body" in event else event
    result = actions.perform(request, predict, sts, HERE, shield.policy.tmp_dir)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(result)}
