"""Serverless AI Shield: protect ML inference on FaaS platforms."""

__version__ = "0.1.0"
