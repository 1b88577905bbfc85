# Deliberately misconfigured Lambda deployment in Terraform. Do not apply.

resource "aws_iam_user" "ci" {
  name = "ci-deployer"
}

resource "aws_iam_access_key" "ci" {
  user = aws_iam_user.ci.name
}

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

# Two harmless-looking policies that together let the function create and run a more privileged function.
resource "aws_iam_role_policy" "pass" {
  role = aws_iam_role.inference.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["iam:PassRole"], Resource = "*" }]
  })
}

data "aws_iam_policy_document" "lambda_admin" {
  statement {
    actions   = ["lambda:CreateFunction", "lambda:AddPermission", "secretsmanager:GetSecretValue"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "lambda_admin" {
  policy = data.aws_iam_policy_document.lambda_admin.json
}

resource "aws_iam_role_policy_attachment" "lambda_admin" {
  role       = aws_iam_role.inference.name
  policy_arn = aws_iam_policy.lambda_admin.arn
}

resource "aws_lambda_function" "predict" {
  function_name                  = "fraud-score"
  role                           = aws_iam_role.inference.arn
  runtime                        = "python3.9"
  handler                        = "app.handler"
  filename                       = "build/predict.zip"
  memory_size                    = 4096
  timeout                        = 900
  reserved_concurrent_executions = -1
  layers                         = ["arn:aws:lambda:us-east-1:444455556666:layer:sklearn:12"]

  environment {
    variables = {
      AWS_ACCESS_KEY_ID     = aws_iam_access_key.ci.id
      AWS_SECRET_ACCESS_KEY = aws_iam_access_key.ci.secret
    }
  }
}

resource "aws_lambda_function_url" "predict" {
  function_name      = aws_lambda_function.predict.function_name
  authorization_type = "NONE"
}

resource "aws_lambda_permission" "anyone" {
  statement_id  = "AllowEveryone"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.predict.function_name
  principal     = "*"
}
