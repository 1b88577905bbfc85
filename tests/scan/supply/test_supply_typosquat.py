"""Typosquat detection: historical typosquats are caught; legitimate popular names never are.

The legitimate names come from two sources independent of the detector's own list: every distribution
installed in this test environment, and a hand-written list of real PyPI projects (many of them not on the
shipped list at all), so the test measures false alarms, not list membership.
"""

from __future__ import annotations

import importlib.metadata as metadata

import pytest

from sas.scan.supply.typosquat import default_index, import_index, load_names, osa_distance

# Malicious packages once published on PyPI, with the package each imitated.
HISTORICAL = {
    # SK-CSIRT advisory, September 2017
    "urlib3": "urllib3",
    "urllib": "urllib3",
    "setup-tools": "setuptools",
    # Bertus' 2018-2019 reports (the "colourama" clipboard stealer and the batch removed with it)
    "colourama": "colorama",
    "djanga": "django",
    "mumpy": "numpy",
    "openvc": "opencv-python",
    "virtualnv": "virtualenv",
    "mateplotlib": "matplotlib",
    "request": "requests",
    "python-mongo": "pymongo",
    "python-mysql": "mysql-python",
    "python-openssl": "pyopenssl",
    "python-sqlite": "pysqlite",
    "pythonkafka": "kafka-python",
    "nmap-python": "nmap",
    # December 2019 SSH/GPG key stealers
    "python3-dateutil": "python-dateutil",
    "jeIlyfish": "jellyfish",
    # requests and tensorflow imitations of the 2022-2023 waves
    "reqeusts": "requests",
    "tenserflow": "tensorflow",
}

HAND_WRITTEN_LEGITIMATE = """
arrow pendulum delorean maya python-dateutil dateparser parsedatetime croniter apscheduler schedule rq huey dramatiq arq
pytest-bdd behave lettuce nose nose2 unittest2 testfixtures pytest-randomly pytest-sugar pytest-benchmark pytest-env
pytest-rerunfailures pytest-order pytest-dotenv pytest-socket pytest-httpx pytest-httpserver pytest-freezegun
time-machine sanic quart falcon bottle pyramid cherrypy hug responder litestar robyn masonite web2py tornado
aiohttp-jinja2 jinja2-time cookiecutter copier pydub mutagen eyed3 tinytag pyttsx3 gtts speechrecognition vosk
beautifulsoup4 lxml html5lib bleach nh3 markdownify html2text boto3 moto localstack localstack-client awscli-local
cdk-nag aws-cdk-aws-s3 sceptre stacker runway awsume xlwings pyexcel pyexcel-xlsx odfpy ezodf pyinstaller py2exe
cx-freeze nuitka briefcase shiv pex pygithub python-gitlab jira atlassian-python-api slack-sdk slackclient
discord-py python-telegram-bot tweepy praw twilio sendgrid mailchimp3 stripe paypalrestsdk braintree sqlalchemy
alembic sqlalchemy-migrate yoyo-migrations numpy scipy pandas statsmodels pingouin lifelines scikit-survival pymc
pymc3 arviz emcee corner pystan cmdstanpy prophet neuralprophet sktime darts tsfresh pmdarima gluonts
tensorflow-model-optimization tensorflow-recommenders keras-tuner autokeras keras-nlp keras-cv torchio monai
pytorch-metric-learning pytorch-forecasting skorch pytorch-ignite catalyst allennlp flair stanza
transformers-interpret bertopic top2vec keybert yake rake-nltk summa sumy spacy-transformers scispacy medspacy gym
gymnasium stable-baselines3 pettingzoo mujoco dm-control networkx igraph python-igraph pyvis rdflib owlready2
sparqlwrapper pycaret mlxtend scikit-plot dtreeviz graphviz pydot pydotplus types-requests types-pyyaml
types-setuptools types-python-dateutil types-redis types-six types-toml types-urllib3 types-pytz types-simplejson
types-protobuf requests-unixsocket requests-oauth httpie curlify uncurl gunicorn waitress hypercorn granian bjoern
meinheld click-plugins click-didyoumean click-repl click-log rich-click cleo clikit crashtest jmespath jsonpath-rw jq
yq pyasn1 pem certbot acme josepy tomli-w tomlkit filetype python-magic puremagic psutil py-cpuinfo gpustat distro
platformdirs sqlite-utils datasette pyroute2 pyudev evdev pillow-heif wand cairosvg pycairo bokeh hvplot datashader
colorcet param pyviz-comms nbdime nbstripout papermill voila semver python-semantic-release bump2version
bumpversion commitizen gitlint sentry-sdk rollbar bugsnag zeep suds suds-py3 spyne xmlschema lxml-html-clean ply
sly lark lark-parser parsimonious pyparsing textx orjson msgspec cbor2 ubjson umsgpack ecs-logging python-logstash
graypy
"""


def _legitimate_names() -> list[str]:
    installed = {d.metadata["Name"] for d in metadata.distributions()} - {"serverless-ai-shield"}
    return sorted(installed | set(HAND_WRITTEN_LEGITIMATE.split()))


@pytest.mark.parametrize("squat", sorted(HISTORICAL))
def test_historical_typosquat_is_caught(squat: str) -> None:
    match = default_index().check(squat)
    assert match is not None, squat
    assert match.target == HISTORICAL[squat]


def test_at_least_twenty_historical_cases() -> None:
    assert len(HISTORICAL) >= 20


def test_no_false_alarm_on_legitimate_popular_names() -> None:
    names = _legitimate_names()
    assert len(names) >= 300
    alarms = [(n, m.target, m.how) for n in names if (m := default_index().check(n)) is not None]
    assert alarms == []


def test_most_legitimate_test_names_are_not_simply_on_the_shipped_list() -> None:
    shipped = set(load_names())
    unlisted = [n for n in HAND_WRITTEN_LEGITIMATE.split() if n not in shipped]
    assert len(unlisted) >= 200  # the false-alarm test exercises the matcher, not a membership check


def test_shipped_list_is_large_and_covers_ml_data_and_cloud() -> None:
    shipped = set(load_names())
    assert len(shipped) >= 1000
    assert {"torch", "scikit-learn", "transformers", "pandas", "boto3", "azure-identity", "google-cloud-storage"} <= (
        shipped
    )


def test_installed_import_names_are_not_imitations() -> None:
    names: set[str] = set()
    for dist in metadata.distributions():
        for file in dist.files or ():
            parts = str(file).split("/")
            top = parts[0]
            if top.endswith((".dist-info", ".data")) or top.startswith(".."):
                continue
            if len(parts) > 1 or top.endswith((".py", ".so")):
                names.add(top.split(".")[0])
    assert [n for n in sorted(names) if import_index().check(n)] == []


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("requests", "reqeusts", 1), ("numpy", "mumpy", 1), ("abc", "abc", 0), ("django", "djanga", 1), ("ab", "ba", 1)],
)
def test_osa_distance(a: str, b: str, expected: int) -> None:
    assert osa_distance(a, b, 3) == expected
