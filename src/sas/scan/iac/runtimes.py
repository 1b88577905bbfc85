"""Deprecated function runtimes, from a dated table.

Dates are each provider's published deprecation dates (AWS Lambda "Runtime deprecation policy", Azure
Functions "Language runtime support policy", Google Cloud Functions "Runtime support schedule") as
read on TABLE_DATE. A date after TABLE_DATE is the announced plan. After deprecation a runtime gets no
security patches, so a function on it keeps whatever vulnerabilities its base image accumulates.
"""

from __future__ import annotations

from datetime import date

TABLE_DATE = date(2026, 11, 20)

# (platform, runtime identifier) -> deprecation date
DEPRECATED: dict[tuple[str, str], date] = {
    ("aws", "python2.7"): date(2021, 7, 15),
    ("aws", "python3.6"): date(2022, 7, 18),
    ("aws", "python3.7"): date(2023, 12, 4),
    ("aws", "python3.8"): date(2024, 10, 14),
    ("aws", "python3.9"): date(2025, 12, 15),
    ("aws", "python3.10"): date(2026, 10, 31),
    ("aws", "nodejs"): date(2016, 10, 31),
    ("aws", "nodejs4.3"): date(2020, 3, 5),
    ("aws", "nodejs6.10"): date(2019, 8, 12),
    ("aws", "nodejs8.10"): date(2020, 3, 6),
    ("aws", "nodejs10.x"): date(2021, 7, 30),
    ("aws", "nodejs12.x"): date(2023, 3, 31),
    ("aws", "nodejs14.x"): date(2023, 12, 4),
    ("aws", "nodejs16.x"): date(2024, 6, 12),
    ("aws", "nodejs18.x"): date(2025, 9, 1),
    ("aws", "nodejs20.x"): date(2026, 4, 30),
    ("aws", "java8"): date(2024, 1, 8),
    ("aws", "java8.al2"): date(2026, 6, 30),
    ("aws", "java11"): date(2026, 6, 30),
    ("aws", "dotnetcore1.0"): date(2019, 7, 30),
    ("aws", "dotnetcore2.0"): date(2019, 5, 30),
    ("aws", "dotnetcore2.1"): date(2022, 1, 5),
    ("aws", "dotnetcore3.1"): date(2023, 4, 3),
    ("aws", "dotnet5.0"): date(2022, 5, 10),
    ("aws", "dotnet6"): date(2024, 12, 20),
    ("aws", "dotnet7"): date(2024, 5, 14),
    ("aws", "dotnet8"): date(2026, 11, 10),
    ("aws", "ruby2.5"): date(2021, 7, 30),
    ("aws", "ruby2.7"): date(2023, 12, 7),
    ("aws", "ruby3.2"): date(2026, 3, 31),
    ("aws", "go1.x"): date(2024, 1, 8),
    ("aws", "provided"): date(2024, 1, 8),
    ("aws", "provided.al2"): date(2026, 6, 30),
    ("gcp", "python37"): date(2024, 1, 30),
    ("gcp", "python38"): date(2024, 10, 14),
    ("gcp", "python39"): date(2025, 10, 5),
    ("gcp", "python310"): date(2026, 10, 4),
    ("gcp", "nodejs6"): date(2020, 8, 5),
    ("gcp", "nodejs8"): date(2021, 6, 5),
    ("gcp", "nodejs10"): date(2024, 1, 30),
    ("gcp", "nodejs12"): date(2024, 1, 30),
    ("gcp", "nodejs14"): date(2024, 1, 30),
    ("gcp", "nodejs16"): date(2024, 1, 30),
    ("gcp", "nodejs18"): date(2025, 4, 30),
    ("gcp", "go111"): date(2024, 1, 30),
    ("gcp", "go113"): date(2024, 1, 30),
    ("gcp", "go116"): date(2024, 1, 30),
    ("gcp", "ruby26"): date(2024, 1, 30),
    ("gcp", "ruby27"): date(2024, 1, 30),
    ("azure", "python3.6"): date(2022, 9, 30),
    ("azure", "python3.7"): date(2023, 6, 27),
    ("azure", "python3.8"): date(2024, 10, 31),
    ("azure", "python3.9"): date(2025, 10, 31),
    ("azure", "node12"): date(2022, 12, 13),
    ("azure", "node14"): date(2023, 4, 30),
    ("azure", "node16"): date(2023, 9, 11),
    ("azure", "node18"): date(2025, 4, 30),
    ("azure", "dotnet3.1"): date(2022, 12, 3),
    ("azure", "dotnet6"): date(2024, 11, 12),
}


def normalise(platform: str, runtime: str) -> str:
    """Lower-case runtime name the table uses (``python|3.8`` Azure linuxFxVersion -> ``python3.8``)."""
    text = runtime.strip().lower()
    if platform == "azure":
        text = text.replace("|", "").replace("~", "").replace("-", "")
        if text.startswith("node") and "." in text:
            text = text.split(".", 1)[0]
    return text


def deprecation(platform: str, runtime: str) -> date | None:
    return DEPRECATED.get((platform, normalise(platform, runtime)))
