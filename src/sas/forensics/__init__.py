"""Post-execution forensics: read the ledger the runtime wrote, prove it untouched, and tell what happened.

``ledger`` reads SQLite, JSON-lines and captured-log ledgers; ``verify`` checks leaves, signatures, checkpoint
consistency and the anchor and names the tampering; ``proofs`` writes and checks per-event C2SP tlog-proofs;
``timeline``, ``incidents``, ``query`` (DuckDB, optional), ``export`` (jsonl, OCSF, Timesketch) and ``report``
(one HTML page) serve the investigation. This layer imports the floor (:mod:`sas.events`) and never
:mod:`sas.runtime` or :mod:`sas.scan`.
"""
