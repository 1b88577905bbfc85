resource "aws_iam_role" "inference" {
  name               = "inference"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "read_model" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::fraud-models/current/*"]
  }
}

resource "aws_iam_role_policy" "read_model" {
  role   = aws_iam_role.inference.id
  policy = data.aws_iam_policy_document.read_model.json
}

resource "aws_iam_role_policy_attachment" "logs" {
  role       = aws_iam_role.inference.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_lambda_code_signing_config" "signed" {
  allowed_publishers {
    signer_profile_version_arns = ["arn:aws:signer:us-east-1:123456789012:/signing-profiles/fraud/abc"]
  }
  policies {
    untrusted_artifact_on_deployment = "Enforce"
  }
}

resource "aws_lambda_layer_version" "deps" {
  layer_name = "fraud-deps"
  filename   = "build/layer.zip"
}

resource "aws_lambda_function" "predict" {
  function_name                  = "fraud-score"
  role                           = aws_iam_role.inference.arn
  runtime                        = "python3.12"
  handler                        = "app.handler"
  filename                       = "build/predict.zip"
  memory_size                    = 1024
  timeout                        = 10
  reserved_concurrent_executions = 50
  layers                         = [aws_lambda_layer_version.deps.arn]
  code_signing_config_arn        = aws_lambda_code_signing_config.signed.arn

  tracing_config {
    mode = "Active"
  }
}

resource "aws_lambda_function_url" "predict" {
  function_name      = aws_lambda_function.predict.function_name
  authorization_type = "AWS_IAM"
}
