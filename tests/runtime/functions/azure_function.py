import json
import os

import azure.functions as func
import boto3
import joblib

from sas import Shield

HERE = os.path.dirname(os.path.abspath(__file__))
model = joblib.load(os.path.join(HERE, "model.joblib"))
sts = boto3.client("sts", endpoint_url=os.environ.get("STS_ENDPOINT"), region_name="us-east-1")


def _actions():
    # loaded from this folder by path: the test process holds several copies of this function
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"actions_{abs(hash(HERE))}", os.path.join(HERE, "actions.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


actions = _actions()
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
shield = Shield.from_config(os.path.join(HERE, "sas.toml"))
predict = shield.guard_model(model.predict)


@app.route(route="attack", methods=["POST"])
@shield.azure_function
def attack(req: func.HttpRequest) -> func.HttpResponse:
    result = actions.perform(req.get_json(), predict, sts, HERE, shield.policy.tmp_dir)
    return func.HttpResponse(json.dumps(result), mimetype="application/json")
