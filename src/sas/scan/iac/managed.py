"""AWS-managed policies that serverless templates attach most, reduced to the statements that matter.

A managed policy is referenced by ARN only, so its content is not in the template. These are the
policies seen in Lambda execution roles; their statements are abbreviated to the actions that decide
a judgement (full wildcards are kept as written by AWS). An ARN not listed here (customer-managed, or an
AWS policy we do not carry) becomes an unresolved statement, reported as a note, never guessed.
"""

from __future__ import annotations

# policy name -> list of (effect, actions, not_actions, resources)
ManagedStatement = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]

_ALL = ("*",)
AWS_MANAGED: dict[str, tuple[ManagedStatement, ...]] = {
    "AdministratorAccess": (("Allow", ("*",), (), _ALL),),
    "PowerUserAccess": (
        ("Allow", (), ("iam:*", "organizations:*", "account:*"), _ALL),
        ("Allow", ("iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles"), (), _ALL),
    ),
    "IAMFullAccess": (("Allow", ("iam:*", "organizations:Describe*", "organizations:List*"), (), _ALL),),
    "AmazonS3FullAccess": (("Allow", ("s3:*", "s3-object-lambda:*"), (), _ALL),),
    "AmazonS3ReadOnlyAccess": (("Allow", ("s3:Get*", "s3:List*", "s3:Describe*"), (), _ALL),),
    "AmazonDynamoDBFullAccess": (("Allow", ("dynamodb:*", "dax:*", "iam:PassRole"), (), _ALL),),
    "AmazonDynamoDBReadOnlyAccess": (
        ("Allow", ("dynamodb:BatchGetItem", "dynamodb:Get*", "dynamodb:Query"), (), _ALL),
    ),
    "AWSLambda_FullAccess": (
        ("Allow", ("lambda:*", "cloudformation:DescribeStacks", "iam:ListRoles", "s3:ListAllMyBuckets"), (), _ALL),
        ("Allow", ("iam:PassRole",), (), _ALL),
    ),
    "AWSLambdaFullAccess": (("Allow", ("lambda:*", "iam:PassRole", "s3:*", "dynamodb:*", "logs:*"), (), _ALL),),
    "AWSLambdaRole": (("Allow", ("lambda:InvokeFunction",), (), _ALL),),
    "AWSLambdaBasicExecutionRole": (
        ("Allow", ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"), (), _ALL),
    ),
    "AWSLambdaVPCAccessExecutionRole": (
        (
            "Allow",
            (
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ),
            (),
            _ALL,
        ),
    ),
    "AWSXRayDaemonWriteAccess": (("Allow", ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), (), _ALL),),
    "AWSXrayWriteOnlyAccess": (("Allow", ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), (), _ALL),),
    "CloudWatchLambdaInsightsExecutionRolePolicy": (("Allow", ("logs:CreateLogGroup", "logs:PutLogEvents"), (), _ALL),),
    "SecretsManagerReadWrite": (("Allow", ("secretsmanager:*", "kms:DescribeKey", "kms:ListKeys"), (), _ALL),),
    "AmazonSSMReadOnlyAccess": (("Allow", ("ssm:Describe*", "ssm:Get*", "ssm:List*"), (), _ALL),),
    "AmazonSSMFullAccess": (("Allow", ("ssm:*", "iam:PassRole"), (), _ALL),),
    "AmazonSageMakerFullAccess": (
        ("Allow", ("sagemaker:*", "s3:GetObject", "s3:PutObject", "iam:PassRole"), (), _ALL),
    ),
    "AmazonSQSFullAccess": (("Allow", ("sqs:*",), (), _ALL),),
    "AmazonSNSFullAccess": (("Allow", ("sns:*",), (), _ALL),),
    "AmazonKinesisFullAccess": (("Allow", ("kinesis:*",), (), _ALL),),
    "CloudWatchFullAccess": (("Allow", ("cloudwatch:*", "logs:*", "sns:*", "iam:GetPolicy"), (), _ALL),),
    "AmazonEC2FullAccess": (("Allow", ("ec2:*", "elasticloadbalancing:*", "cloudwatch:*", "autoscaling:*"), (), _ALL),),
    "ReadOnlyAccess": (
        ("Allow", ("s3:Get*", "s3:List*", "secretsmanager:Describe*", "dynamodb:Scan", "ec2:Describe*"), (), _ALL),
    ),
}


def managed_name(arn: str) -> str | None:
    """The AWS-managed policy name of ``arn`` (``arn:aws:iam::aws:policy/service-role/X`` -> X), else None."""
    if ":iam::aws:policy/" not in arn:
        return None
    return arn.rsplit("/", 1)[-1]
