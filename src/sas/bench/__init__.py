"""Evaluation harness: real models on bundled data, benign populations, attacks, results (``sas bench detect``)."""
