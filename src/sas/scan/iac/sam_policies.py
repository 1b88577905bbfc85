"""SAM policy templates (``S3ReadPolicy: {BucketName: x}``) expanded to IAM statements.

SAM turns each template into concrete statements at deploy time; checkov and friends never do, so a
``S3CrudPolicy`` with ``BucketName: '*'`` passes them. The table below holds the templates serverless
functions use, with the actions and resource shapes of SAM's own ``policy_templates.json`` (Apache-2.0,
aws-sam-translator); ``{Param}`` marks where the template parameter goes. A template not listed here
becomes an unresolved statement (reported as a note), never an empty grant.
"""

from __future__ import annotations

_ACC = "arn:aws:{svc}:${{AWS::Region}}:${{AWS::AccountId}}:"


def _arn(svc: str, rest: str) -> str:
    return _ACC.format(svc=svc) + rest


_S3_BUCKET = ("arn:aws:s3:::{BucketName}", "arn:aws:s3:::{BucketName}/*")
_DDB_TABLE = (_arn("dynamodb", "table/{TableName}"), _arn("dynamodb", "table/{TableName}/index/*"))

# name -> tuple of (actions, resources); resources "*" means every resource.
TEMPLATES: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "AMIDescribePolicy": ((("ec2:DescribeImages",), ("*",)),),
    "AWSSecretsManagerGetSecretValuePolicy": ((("secretsmanager:GetSecretValue",), ("{SecretArn}",)),),
    "AWSSecretsManagerRotationPolicy": (
        (
            (
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ),
            (_arn("secretsmanager", "secret:*"),),
        ),
        (("secretsmanager:GetRandomPassword",), ("*",)),
    ),
    "CloudWatchPutMetricPolicy": ((("cloudwatch:PutMetricData",), ("*",)),),
    "CloudWatchDashboardPolicy": (
        (("cloudwatch:GetDashboard", "cloudwatch:ListDashboards", "cloudwatch:PutDashboard"), ("*",)),
    ),
    "ComprehendBasicAccessPolicy": ((("comprehend:Detect*", "comprehend:BatchDetect*"), ("*",)),),
    "DynamoDBCrudPolicy": (
        (
            (
                "dynamodb:GetItem",
                "dynamodb:DeleteItem",
                "dynamodb:PutItem",
                "dynamodb:Scan",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:BatchGetItem",
                "dynamodb:DescribeTable",
                "dynamodb:ConditionCheckItem",
            ),
            _DDB_TABLE,
        ),
    ),
    "DynamoDBReadPolicy": (
        (
            ("dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"),
            _DDB_TABLE,
        ),
    ),
    "DynamoDBWritePolicy": ((("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"), _DDB_TABLE),),
    "DynamoDBStreamReadPolicy": (
        (
            ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"),
            (_arn("dynamodb", "table/{TableName}/stream/{StreamName}"),),
        ),
    ),
    "EC2DescribePolicy": ((("ec2:DescribeRegions", "ec2:DescribeInstances"), ("*",)),),
    "EFSWriteAccessPolicy": (
        (
            ("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"),
            (_arn("elasticfilesystem", "file-system/{FileSystem}"),),
        ),
    ),
    "EventBridgePutEventsPolicy": ((("events:PutEvents",), (_arn("events", "event-bus/{EventBusName}"),)),),
    "FirehoseWritePolicy": (
        (("firehose:PutRecord", "firehose:PutRecordBatch"), (_arn("firehose", "deliverystream/{DeliveryStreamName}"),)),
    ),
    "KinesisStreamReadPolicy": (
        (("kinesis:ListStreams", "kinesis:DescribeLimits"), (_arn("kinesis", "stream/*"),)),
        (
            (
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:GetRecords",
                "kinesis:GetShardIterator",
            ),
            (_arn("kinesis", "stream/{StreamName}"),),
        ),
    ),
    "KinesisCrudPolicy": (
        (
            (
                "kinesis:AddTagsToStream",
                "kinesis:CreateStream",
                "kinesis:DeleteStream",
                "kinesis:DescribeStream",
                "kinesis:GetShardIterator",
                "kinesis:PutRecord",
                "kinesis:PutRecords",
            ),
            (_arn("kinesis", "stream/{StreamName}"),),
        ),
    ),
    "KMSDecryptPolicy": ((("kms:Decrypt",), (_arn("kms", "key/{KeyId}"),)),),
    "KMSEncryptPolicy": ((("kms:Encrypt",), (_arn("kms", "key/{KeyId}"),)),),
    "LambdaInvokePolicy": ((("lambda:InvokeFunction",), (_arn("lambda", "function:{FunctionName}*"),)),),
    "RekognitionDetectOnlyPolicy": (
        (
            (
                "rekognition:DetectFaces",
                "rekognition:DetectLabels",
                "rekognition:DetectModerationLabels",
                "rekognition:DetectText",
            ),
            ("*",),
        ),
    ),
    "RekognitionLabelsPolicy": ((("rekognition:DetectLabels", "rekognition:DetectModerationLabels"), ("*",)),),
    "S3ReadPolicy": (
        (
            (
                "s3:GetObject",
                "s3:ListBucket",
                "s3:GetBucketLocation",
                "s3:GetObjectVersion",
                "s3:GetLifecycleConfiguration",
            ),
            _S3_BUCKET,
        ),
    ),
    "S3WritePolicy": ((("s3:PutObject", "s3:PutObjectAcl", "s3:PutLifecycleConfiguration"), _S3_BUCKET),),
    "S3CrudPolicy": (
        (
            (
                "s3:GetObject",
                "s3:ListBucket",
                "s3:GetBucketLocation",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:PutObjectAcl",
                "s3:GetLifecycleConfiguration",
                "s3:PutLifecycleConfiguration",
                "s3:DeleteObject",
            ),
            _S3_BUCKET,
        ),
    ),
    "S3FullAccessPolicy": (
        (
            (
                "s3:GetObject",
                "s3:GetObjectAcl",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:PutObjectAcl",
                "s3:DeleteObject",
                "s3:DeleteObjectTagging",
                "s3:GetObjectTagging",
                "s3:PutObjectTagging",
            ),
            ("arn:aws:s3:::{BucketName}/*",),
        ),
        (
            ("s3:ListBucket", "s3:GetBucketLocation", "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration"),
            ("arn:aws:s3:::{BucketName}",),
        ),
    ),
    "SageMakerCreateEndpointPolicy": (
        (("sagemaker:CreateEndpoint",), (_arn("sagemaker", "endpoint/{EndpointName}"),)),
    ),
    "SageMakerCreateEndpointConfigPolicy": (
        (("sagemaker:CreateEndpointConfig",), (_arn("sagemaker", "endpoint-config/{EndpointConfigName}"),)),
    ),
    "SESCrudPolicy": (
        (
            (
                "ses:GetIdentityVerificationAttributes",
                "ses:SendEmail",
                "ses:SendRawEmail",
                "ses:VerifyEmailIdentity",
            ),
            (_arn("ses", "identity/{IdentityName}"),),
        ),
    ),
    "SNSCrudPolicy": (
        (
            (
                "sns:ListSubscriptionsByTopic",
                "sns:CreateTopic",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:Publish",
            ),
            (_arn("sns", "{TopicName}*"),),
        ),
    ),
    "SNSPublishMessagePolicy": ((("sns:Publish",), (_arn("sns", "{TopicName}"),)),),
    "SQSPollerPolicy": (
        (
            (
                "sqs:ChangeMessageVisibility",
                "sqs:ChangeMessageVisibilityBatch",
                "sqs:DeleteMessage",
                "sqs:DeleteMessageBatch",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ),
            (_arn("sqs", "{QueueName}"),),
        ),
    ),
    "SQSSendMessagePolicy": ((("sqs:SendMessage*",), (_arn("sqs", "{QueueName}"),)),),
    "SSMParameterReadPolicy": (
        (("ssm:DescribeParameters",), ("*",)),
        (
            ("ssm:GetParameters", "ssm:GetParameter", "ssm:GetParametersByPath"),
            (_arn("ssm", "parameter/{ParameterName}"),),
        ),
    ),
    "SSMParameterWithSlashPrefixReadPolicy": (
        (("ssm:DescribeParameters",), ("*",)),
        (
            ("ssm:GetParameters", "ssm:GetParameter", "ssm:GetParametersByPath"),
            (_arn("ssm", "parameter{ParameterName}"),),
        ),
    ),
    "StepFunctionsExecutionPolicy": (
        (("states:StartExecution",), (_arn("states", "stateMachine:{StateMachineName}"),)),
    ),
    "TextractPolicy": ((("textract:*",), ("*",)),),
    "TextractDetectAnalyzePolicy": (
        (
            (
                "textract:DetectDocumentText",
                "textract:StartDocumentTextDetection",
                "textract:StartDocumentAnalysis",
                "textract:AnalyzeDocument",
            ),
            ("*",),
        ),
    ),
    "VPCAccessPolicy": (
        (
            (
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DetachNetworkInterface",
            ),
            ("*",),
        ),
    ),
}


def expand(name: str, params: dict[str, str]) -> list[tuple[tuple[str, ...], tuple[str, ...]]] | None:
    """(actions, resources) pairs of template ``name`` with ``params`` filled in; None when unknown."""
    spec = TEMPLATES.get(name)
    if spec is None:
        return None
    out = []
    for actions, resources in spec:
        filled = []
        for res in resources:
            text = res
            for key, val in params.items():
                text = text.replace("{" + key + "}", val)
            filled.append(text.replace("{{", "{").replace("}}", "}"))
        out.append((actions, tuple(filled)))
    return out
