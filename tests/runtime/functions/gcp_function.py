import os

import actions
import boto3
import functions_framework
import joblib

from sas import Shield

HERE = os.path.dirname(os.path.abspath(__file__))
model = joblib.load(os.path.join(HERE, "model.joblib"))
sts = boto3.client("sts", endpoint_url=os.environ.get("STS_ENDPOINT"), region_name="us-east-1")

shield = Shield.from_config(os.path.join(HERE, "sas.toml"))
predict = shield.guard_model(model.predict)


@functions_framework.http
@shield.gcp_function
def attack(request):
    return actions.perform(request.get_json(force=True), predict, sts, HERE, shield.policy.tmp_dir)
