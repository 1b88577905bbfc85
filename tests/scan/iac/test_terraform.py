"""Terraform: AWS Lambda with its IAM, URLs, permissions and API routes; GCP and Azure function resources."""

from __future__ import annotations

from sas.scan.iac import terraform
from sas.taxonomy import Severity

AWS_BAD = """
resource "aws_iam_role" "fn" {
  name               = "fn"
  assume_role_policy = "{}"
}

resource "aws_iam_role_policy" "inline" {
  role = aws_iam_role.fn.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["iam:PassRole"]
      Resource = "*"
    }]
  })
}

resource "aws_iam_policy" "deploy" {
  policy = data.aws_iam_policy_document.deploy.json
}

data "aws_iam_policy_document" "deploy" {
  statement {
    actions   = ["lambda:CreateFunction", "lambda:InvokeFunction"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy_attachment" "deploy" {
  role       = aws_iam_role.fn.name
  policy_arn = aws_iam_policy.deploy.arn
}

resource "aws_lambda_function" "predict" {
  function_name = "predict"
  role          = aws_iam_role.fn.arn
  runtime       = "python3.12"
  handler       = "app.handler"
  environment {
    variables = {
      AWS_SECRET_ACCESS_KEY = aws_iam_access_key.ci.secret
    }
  }
}

resource "aws_lambda_function_url" "predict" {
  function_name      = aws_lambda_function.predict.function_name
  authorization_type = "NONE"
}
"""

AWS_GOOD = """
data "aws_iam_policy_document" "read" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::models/*"]
  }
}

resource "aws_iam_role" "fn" {
  name               = "fn"
  assume_role_policy = "{}"
  inline_policy {
    name   = "read"
    policy = data.aws_iam_policy_document.read.json
  }
}

resource "aws_lambda_function" "predict" {
  function_name                  = "predict"
  role                           = aws_iam_role.fn.arn
  runtime                        = "python3.12"
  handler                        = "app.handler"
  timeout                        = 10
  reserved_concurrent_executions = 10
  tracing_config {
    mode = "Active"
  }
}

resource "aws_lambda_function_url" "predict" {
  function_name      = aws_lambda_function.predict.function_name
  authorization_type = "AWS_IAM"
}
"""


def test_aws_classic_mistakes(scan_files):
    res = scan_files({"main.tf": AWS_BAD})
    ids = set(res.ids())
    assert {"SAS-IAC-001", "SAS-IAC-003", "SAS-IAM-004", "SAS-IAM-010"} <= ids, res.text()
    esc = [f for f in res.rule("SAS-IAM-004") if "lambda-001" in f.message]
    assert esc and "different policies" in esc[0].message
    url = res.rule("SAS-IAC-001")[0]
    expected = AWS_BAD.lstrip("\n").splitlines().index('  authorization_type = "NONE"') + 1
    assert url.location.path == "main.tf" and url.location.line == expected
    assert res.worst() == Severity.CRITICAL


def test_aws_fixed(scan_files):
    res = scan_files({"main.tf": AWS_GOOD})
    assert res.ids("medium") == [], res.text()


def test_files_of_a_folder_are_combined(scan_files):
    iam_part, _, fn_part = AWS_BAD.partition('resource "aws_lambda_function" "predict"')
    res = scan_files(
        {"infra/iam.tf": iam_part, "infra/lambda.tf": 'resource "aws_lambda_function" "predict"' + fn_part}
    )
    assert "SAS-IAM-010" in res.ids()


def test_variables_locals_and_reserved_minus_one(scan_files):
    text = """
    variable "rt" {
      default = "nodejs16.x"
    }
    locals {
      mem = 3008
    }
    resource "aws_lambda_function" "f" {
      function_name                  = "f"
      runtime                        = var.rt
      memory_size                    = local.mem
      role                           = "arn:aws:iam::123456789012:role/x"
      reserved_concurrent_executions = -1
    }
    """
    res = scan_files({"main.tf": text})
    assert "SAS-IAC-005" in res.ids()
    (dow,) = res.rule("SAS-IAC-006")
    assert "-1" in dow.message and "2.9375 GB" in dow.message


def test_unresolvable_variable_is_not_guessed(scan_files):
    text = """
    variable "auth" {}
    resource "aws_lambda_function" "f" {
      function_name = "f"
      runtime       = "python3.12"
      role          = "arn:aws:iam::1:role/x"
    }
    resource "aws_lambda_function_url" "u" {
      function_name      = aws_lambda_function.f.function_name
      authorization_type = var.auth
    }
    """
    res = scan_files({"main.tf": text})
    assert "SAS-IAC-001" not in res.ids()
    assert "SAS-IAC-002" in res.ids()


def test_permission_principal_star(scan_files):
    text = """
    resource "aws_lambda_function" "f" {
      function_name = "f"
      runtime       = "python3.12"
      role          = "arn:aws:iam::1:role/x"
    }
    resource "aws_lambda_permission" "any" {
      action        = "lambda:InvokeFunction"
      function_name = aws_lambda_function.f.function_name
      principal     = "*"
    }
    """
    assert "SAS-IAC-001" in scan_files({"main.tf": text}).ids()


def test_api_gateway_v1_and_v2_routes(scan_files):
    text = """
    resource "aws_lambda_function" "f" {
      function_name = "f"
      runtime       = "python3.12"
      role          = "arn:aws:iam::1:role/x"
    }
    resource "aws_api_gateway_method" "post" {
      rest_api_id   = "x"
      resource_id   = "y"
      http_method   = "POST"
      authorization = "NONE"
    }
    resource "aws_api_gateway_integration" "post" {
      rest_api_id = "x"
      resource_id = "y"
      http_method = aws_api_gateway_method.post.http_method
      type        = "AWS_PROXY"
      uri         = aws_lambda_function.f.invoke_arn
    }
    resource "aws_apigatewayv2_integration" "i" {
      api_id           = "a"
      integration_type = "AWS_PROXY"
      integration_uri  = aws_lambda_function.f.invoke_arn
    }
    resource "aws_apigatewayv2_route" "r" {
      api_id             = "a"
      route_key          = "POST /predict"
      target             = "integrations/${aws_apigatewayv2_integration.i.id}"
      authorization_type = "JWT"
    }
    """
    res = scan_files({"main.tf": text})
    kinds = [f.evidence for f in res.rule("SAS-IAC-001")]
    assert kinds == ["aws_lambda_function.f:rest-api:NONE"]


def test_public_layer_permission(scan_files):
    text = """
    resource "aws_lambda_layer_version_permission" "p" {
      layer_name     = "x"
      version_number = 1
      principal      = "*"
      action         = "lambda:GetLayerVersion"
      statement_id   = "all"
    }
    """
    assert "SAS-IAC-015" in scan_files({"main.tf": text}).ids()


def test_malformed_hcl_is_a_finding(scan_files):
    res = scan_files({"main.tf": 'resource "aws_lambda_function" "f" {\n  runtime = \n'})
    (hit,) = res.rule("SAS-IAC-000")
    assert hit.location.path == "main.tf"


def test_tf_json(scan_files):
    import json

    doc = {
        "resource": {
            "aws_lambda_function": {
                "f": {"function_name": "f", "runtime": "python3.7", "role": "arn:aws:iam::1:role/x"}
            }
        }
    }
    assert "SAS-IAC-005" in scan_files({"main.tf.json": json.dumps(doc)}).ids()


GCP_BAD = """
resource "google_cloudfunctions_function" "predict" {
  name         = "predict"
  runtime      = "python38"
  trigger_http = true
  environment_variables = {
    HF_TOKEN = "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"
  }
}

resource "google_cloudfunctions_function_iam_member" "public" {
  cloud_function = google_cloudfunctions_function.predict.name
  role           = "roles/cloudfunctions.invoker"
  member         = "allUsers"
}
"""

GCP_GOOD = """
resource "google_service_account" "fn" {
  account_id = "predict-fn"
}

resource "google_cloudfunctions2_function" "predict" {
  name = "predict"
  build_config {
    runtime     = "python312"
    entry_point = "predict"
  }
  service_config {
    max_instance_count    = 10
    available_memory      = "512M"
    timeout_seconds       = 30
    service_account_email = google_service_account.fn.email
    ingress_settings      = "ALLOW_INTERNAL_AND_GCLB"
  }
}

resource "google_cloudfunctions2_function_iam_member" "invoker" {
  cloud_function = google_cloudfunctions2_function.predict.name
  role           = "roles/cloudfunctions.invoker"
  member         = "serviceAccount:frontend@project.iam.gserviceaccount.com"
}
"""


def test_gcp_public_default_sa(scan_files):
    res = scan_files({"main.tf": GCP_BAD})
    assert {"SAS-IAC-001", "SAS-IAC-010", "SAS-IAC-003", "SAS-IAC-005", "SAS-IAM-010"} <= set(res.ids()), res.text()


def test_gcp_fixed(scan_files):
    res = scan_files({"main.tf": GCP_GOOD})
    assert res.ids("medium") == [], res.text()


def test_gcp_service_account_with_editor_role(scan_files):
    text = (
        GCP_GOOD
        + """
resource "google_project_iam_member" "editor" {
  project = "p"
  role    = "roles/editor"
  member  = "serviceAccount:${google_service_account.fn.email}"
}
"""
    )
    res = scan_files({"main.tf": text})
    assert "SAS-IAM-007" in res.ids()


def test_gcp_all_authenticated_users_on_cloud_run_invoker(scan_files):
    text = GCP_GOOD.replace(
        'member         = "serviceAccount:frontend@project.iam.gserviceaccount.com"',
        'member         = "allAuthenticatedUsers"',
    ).replace('ingress_settings      = "ALLOW_INTERNAL_AND_GCLB"', 'ingress_settings      = "ALLOW_ALL"')
    assert "SAS-IAC-001" in scan_files({"main.tf": text}).ids()


def test_azure_function_app(scan_files):
    text = """
    resource "azurerm_linux_function_app" "app" {
      name                       = "predict"
      storage_account_access_key = "c3VwZXJzZWNyZXRrZXlzdXBlcnNlY3JldGtleXN1cGVyc2VjcmV0a2V5MTIzNDU2Nzg5MA=="
      app_settings = {
        OPENAI_API_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
      }
      site_config {
        application_stack {
          python_version = "3.8"
        }
      }
    }
    resource "azurerm_function_app_function" "predict" {
      name            = "predict"
      function_app_id = azurerm_linux_function_app.app.id
      config_json = jsonencode({
        bindings = [{
          authLevel = "anonymous"
          type      = "httpTrigger"
          direction = "in"
          name      = "req"
        }]
      })
    }
    """
    res = scan_files({"main.tf": text})
    assert {"SAS-IAC-001", "SAS-IAC-003", "SAS-IAC-005", "SAS-IAC-016"} <= set(res.ids()), res.text()


def test_parser_model_lines():
    dep = terraform.parse("", [("main.tf", AWS_GOOD)])
    (fn,) = dep.functions
    assert fn.timeout_s is not None and fn.timeout_s.value == 10 and fn.timeout_s.src.line == 23
    assert fn.role is not None and fn.role.statements[0].resources == ("arn:aws:s3:::models/*",)


def test_a_terraform_module_beyond_the_size_cap_is_reported_unchecked_not_parsed(scan_files):
    """Found by the inputs fuzzing helper: HCL parsing grows faster than the text (1.4 MB of resources took 23 s),
    so a crafted module could stall a CI scan for minutes. Past MAX_TERRAFORM_BYTES it is reported, fail closed."""
    from sas.scan.iac.analyzer import MAX_TERRAFORM_BYTES

    block = 'resource "aws_lambda_function" "f%d" {\n  function_name = "f%d"\n  runtime = "python3.12"\n}\n'
    text, i = [], 0
    while sum(map(len, text)) <= MAX_TERRAFORM_BYTES // 2:
        text.append(block % (i, i))
        i += 1
    half = "".join(text)  # two files, each under the cap, together over it: the module is what gets parsed
    res = scan_files({"a.tf": half, "b.tf": half.replace('"f', '"g')})
    (hit,) = res.rule("SAS-IAC-000")
    assert "too large to parse" in hit.message and hit.location.path.endswith("a.tf")
