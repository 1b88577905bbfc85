"""What a compromised (or benign) handler does, on request: the same actions on every platform."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from typing import Any

log = logging.getLogger("shielded-function")


def perform(request: dict[str, Any], predict: Any, sts: Any, code_dir: str, tmp_dir: str) -> dict[str, Any]:
    action = request.get("action", "predict")
    if action == "predict":
        label = int(predict([request["features"]])[0])
        log.info("predicted %s", label)
        if request.get("sdk"):
            sts.get_caller_identity()
        return {"label": label}
    if action == "egress":
        with socket.create_connection(("127.0.0.1", int(request["port"])), timeout=5):
            pass
        return {"egress": "connected"}
    if action == "subprocess":
        subprocess.run(["true"], check=True)
        return {"subprocess": "ran"}
    if action == "write_code":
        with open(os.path.join(code_dir, "injected.py"), "w") as fh:
            fh.write("print('persisted')\n")
        return {"write": "done"}
    if action == "tmp_residue":
        with open(os.path.join(tmp_dir, request["name"]), "w") as fh:
            fh.write("left for the next invocation")
        return {"tmp": "written"}
    if action == "assume_role":
        creds = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/admin", RoleSessionName="pivot")
        return {"assumed": bool(creds.get("Credentials"))}
    return {"noop": True}
