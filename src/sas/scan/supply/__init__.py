"""Supply-chain checks of ``sas scan``: declared dependencies, vendored code (RECORD, start-up hooks, obfuscated
and import-time code, typosquats) and Lambda layers. The analyzer is :mod:`sas.scan.supply.analyzer`."""
