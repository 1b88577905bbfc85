"""Deployment-configuration scanning speed: ``sas scan`` over 200 generated templates.

Prints the start-up time (first byte of output when scanning one small template, median of 5 runs),
and for 200 templates (SAM YAML, CloudFormation JSON, serverless.yml, Terraform, function.json, mixed
clean and misconfigured) the wall time, templates per second and the time to first output.
Targets from the issue: start-up under 300 ms, 200 templates under 5 s.

    .venv/bin/python benchmarks/scan_iac.py [--count 200]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAM = """AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: {runtime}
    Timeout: 10
Resources:
  Fn{i}:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      MemorySize: 1024
      FunctionUrlConfig:
        AuthType: {auth}
      Environment:
        Variables:
          TABLE: table-{i}
      Policies:
        - DynamoDBCrudPolicy:
            TableName: table-{i}
        - Statement:
            - Effect: Allow
              Action: {action}
              Resource: '*'
"""

SERVERLESS = """service: svc-{i}
provider:
  name: aws
  runtime: {runtime}
  iam:
    role:
      statements:
        - Effect: Allow
          Action: {action}
          Resource: '*'
functions:
  predict:
    handler: handler.predict
    events:
      - httpApi: 'POST /predict'
"""

TERRAFORM = """resource "aws_iam_role" "r{i}" {{
  name               = "r{i}"
  assume_role_policy = "{{}}"
}}
resource "aws_iam_role_policy" "p{i}" {{
  role   = aws_iam_role.r{i}.id
  policy = jsonencode({{
    Statement = [{{ Effect = "Allow", Action = ["{action}"], Resource = "*" }}]
  }})
}}
resource "aws_lambda_function" "f{i}" {{
  function_name = "f{i}"
  role          = aws_iam_role.r{i}.arn
  runtime       = "{runtime}"
  handler       = "app.handler"
}}
resource "aws_lambda_function_url" "u{i}" {{
  function_name      = aws_lambda_function.f{i}.function_name
  authorization_type = "{auth}"
}}
"""


def generate(root: Path, count: int) -> None:
    runtimes = ["python3.12", "python3.8", "nodejs20.x", "python3.11"]
    actions = ["s3:GetObject", "'*'", "lambda:UpdateFunctionCode", "dynamodb:Query"]
    for i in range(count):
        runtime = runtimes[i % len(runtimes)]
        action = actions[i % len(actions)]
        auth = "NONE" if i % 3 == 0 else "AWS_IAM"
        folder = root / f"app{i:03d}"
        folder.mkdir()
        kind = i % 5
        if kind == 0:
            (folder / "template.yaml").write_text(SAM.format(i=i, runtime=runtime, auth=auth, action=action))
        elif kind == 1:
            doc = {
                "AWSTemplateFormatVersion": "2010-09-09",
                "Resources": {
                    f"Fn{i}": {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {"Runtime": runtime, "Handler": "a.b", "Role": "arn:aws:iam::1:role/r"},
                    },
                    "Url": {
                        "Type": "AWS::Lambda::Url",
                        "Properties": {"AuthType": auth, "TargetFunctionArn": {"Fn::GetAtt": [f"Fn{i}", "Arn"]}},
                    },
                },
            }
            (folder / "template.json").write_text(json.dumps(doc, indent=2))
        elif kind == 2:
            (folder / "serverless.yml").write_text(SERVERLESS.format(i=i, runtime=runtime, action=action))
        elif kind == 3:
            tf_action = action.strip("'")
            (folder / "main.tf").write_text(TERRAFORM.format(i=i, runtime=runtime, auth=auth, action=tf_action))
        else:
            level = "anonymous" if auth == "NONE" else "function"
            binding = {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": level}
            (folder / "Predict").mkdir()
            (folder / "Predict" / "function.json").write_text(json.dumps({"bindings": [binding]}, indent=2))


def sas_command() -> list[str]:
    script = Path(sys.executable).with_name("sas")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sas.cli"]


def bench_env(cache: Path) -> dict[str, str]:
    """Like an installed package: byte-code cached (in a temporary prefix, not in the source tree)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


ENV: dict[str, str] = {}


def timed_run(target: Path) -> tuple[float, float, int]:
    """(seconds to first stdout byte, total seconds, exit code) of one ``sas scan``."""
    cmd = [*sas_command(), "scan", str(target), "--format", "json", "--no-progress"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV or None)
    assert proc.stdout is not None
    first = proc.stdout.read(1)
    first_at = time.perf_counter() - started
    rest = proc.stdout.read()
    code = proc.wait()
    total = time.perf_counter() - started
    if not first and not rest:
        raise SystemExit(f"sas scan printed nothing (exit {code})")
    return first_at, total, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sas-iac-bench-"))
    try:
        ENV.update(bench_env(root / "pycache"))
        single = root / "single"
        single.mkdir()
        (single / "template.yaml").write_text(
            SAM.format(i=0, runtime="python3.12", auth="AWS_IAM", action="s3:GetObject")
        )
        (single / "main.tf").write_text(
            TERRAFORM.format(i=0, runtime="python3.12", auth="AWS_IAM", action="s3:GetObject")
        )
        timed_run(single)  # warm-up: writes the byte-code cache, as an installed package has
        (single / "main.tf").unlink()
        startups = [timed_run(single)[0] for _ in range(5)]
        many = root / "many"
        many.mkdir()
        generate(many, args.count)
        first, total, _ = timed_run(many)
        report = json.loads(
            subprocess.run(
                [*sas_command(), "scan", str(many), "--format", "json", "--no-progress"],
                capture_output=True,
                check=False,
                text=True,
                env=ENV,
            ).stdout
        )
        findings = len(report.get("findings", []))
        print(f"start-up (one template, first output, median of 5): {statistics.median(startups) * 1000:.0f} ms")
        print(f"{args.count} templates: {total:.2f} s total, {args.count / total:.1f} templates/s")
        print(f"time to first output over {args.count} templates: {first * 1000:.0f} ms")
        print(f"findings: {findings} (errors: {len(report.get('errors', []))})")
        print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (figures scale with it)")
        print("targets: start-up < 300 ms, 200 templates < 5 s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
