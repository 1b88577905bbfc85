"""The digits function with planted problems, for `sas scan` to find. Do not deploy.

Planted: a poisoned model file (model/model.pkl), request data deserialized with pickle, eval of request
data, a hard-coded key, logging of whole events, a module-level cache filled from requests.
"""

import base64
import json
import os
import pickle
import subprocess

MODEL = pickle.load(open(os.path.join(os.path.dirname(__file__), "model", "model.pkl"), "rb"))[1]
AWS_ACCESS_KEY_ID = "AKIAZ3MXQ7RTV5PLWG4N"
AWS_SECRET_ACCESS_KEY = "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"
SEEN = {}


def handler(event, context):
    print(json.dumps(event))
    body = json.loads(event["body"])
    if "batch" in body:
        rows = pickle.loads(base64.b64decode(body["batch"]))
    else:
        rows = [eval(body["features"])]
    SEEN[body.get("client")] = rows
    if body.get("debug"):
        subprocess.run("echo " + body["debug"], shell=True)
    return {"statusCode": 200, "body": json.dumps({"labels": MODEL.predict(rows).tolist()})}
