"""Deployment-configuration validation: parsers of SAM/CloudFormation, Serverless Framework, Terraform and
Azure Functions files into one model (:mod:`sas.scan.iac.model`), and the checks that run on it."""
