"""Model-artifact analyzers, one module per format family.

Pickle-based formats (plain pickle, joblib, PyTorch zip/legacy checkpoints, NumPy object arrays) share the
streaming opcode analyzer in :mod:`sas.scan.models.pickle_scan` and the allow/deny policy in
:mod:`sas.scan.models.pickle_policy`. Nothing here imports or runs what it scans.
"""
