"""Rules of the handler-code analyzer (``SAS-CODE-###``)."""

from __future__ import annotations

from sas.scan.rules import rule
from sas.taxonomy import Severity, Threat

DESERIALIZE_REQUEST = rule(
    "SAS-CODE-001",
    "Request data is deserialized with a format that runs code",
    Severity.CRITICAL,
    Threat.UNSAFE_HANDLER_CODE,
    "Data from the invocation's event or request reaches pickle, joblib, torch.load (without weights_only=True), "
    "numpy.load(allow_pickle=True), yaml.load without a safe loader, marshal, dill or cloudpickle. Anyone who can "
    "call the function can run code inside it, with its role's credentials.",
    "Accept only data formats (JSON, safetensors, numpy without allow_pickle) from requests; never unpickle "
    "request data. For torch use weights_only=True, for YAML yaml.safe_load.",
    ("CWE-502", "OWASP Serverless Top 10 SAS-1", "MITRE ATLAS AML.T0011.000"),
)
DESERIALIZE_FILE = rule(
    "SAS-CODE-002",
    "Code-running deserializer loads a file",
    Severity.LOW,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "A pickle-based loader (pickle, joblib, torch.load without weights_only=True, numpy allow_pickle, yaml.load, "
    "marshal, dill, cloudpickle) reads data that does not come from the request, usually a model file. That is "
    "normal, but the file runs code when loaded: it must be the file that was scanned and signed.",
    "Keep model files inside the package and scan them (sas scan checks pickle, joblib and torch files); pin them "
    "with a signed manifest (sas manifest build) or prefer safetensors/ONNX.",
    ("CWE-502", "MITRE ATLAS AML.T0011.000"),
)
SHELL_REQUEST = rule(
    "SAS-CODE-003",
    "Request data reaches a shell or a subprocess",
    Severity.CRITICAL,
    Threat.UNSAFE_HANDLER_CODE,
    "Data from the event or request is part of a command run through os.system, os.popen, subprocess with "
    "shell=True (command injection), or of a subprocess argument list (argument injection).",
    "Do not build commands from request data. Call a library instead of a program; if a program is needed, pass a "
    "fixed argument list without shell=True and only values chosen from an allow-list.",
    ("CWE-78", "OWASP Serverless Top 10 SAS-1"),
)
SHELL_USE = rule(
    "SAS-CODE-004",
    "Shell command in function code",
    Severity.LOW,
    Threat.RUNTIME_COMPROMISE,
    "The function starts a shell (os.system, os.popen, subprocess with shell=True) with a command that is not a "
    "constant. Inference functions rarely need one, and one later change can put request data into it.",
    "Use a library call, or subprocess with a fixed argument list and shell=False.",
    ("CWE-78",),
)
EVAL_REQUEST = rule(
    "SAS-CODE-005",
    "Request data reaches eval, exec or compile",
    Severity.CRITICAL,
    Threat.UNSAFE_HANDLER_CODE,
    "Data from the event or request is evaluated as Python code: anyone who can call the function runs code in it.",
    "Parse data with json.loads or ast.literal_eval; never evaluate request data.",
    ("CWE-95", "CWE-94", "OWASP Serverless Top 10 SAS-1"),
)
EVAL_USE = rule(
    "SAS-CODE-006",
    "Dynamic code evaluation",
    Severity.MEDIUM,
    Threat.UNSAFE_HANDLER_CODE,
    "eval, exec or compile runs a string that is not a literal. The string's origin is not visible to this "
    "analysis (another function, a file, the environment); if it can be influenced, it is code injection.",
    "Replace dynamic evaluation with explicit code, a dispatch table, or ast.literal_eval for data.",
    ("CWE-95", "CWE-94"),
)
SSRF = rule(
    "SAS-CODE-007",
    "Server-side request to a URL from the request (SSRF)",
    Severity.HIGH,
    Threat.UNSAFE_HANDLER_CODE,
    "The function fetches a URL taken from the event or request. An attacker can make it call internal services "
    "or the runtime's credential endpoints (the Lambda runtime API, 169.254.169.254, Azure IMDS) and read the answer.",
    "Fetch only fixed hosts: map a request value to a URL from a fixed table, or check the parsed host against an "
    "allow-list and refuse redirects; deny egress by default (sas runtime [runtime.egress] allow).",
    ("CWE-918", "OWASP Serverless Top 10 SAS-1"),
)
PATH_TRAVERSAL = rule(
    "SAS-CODE-008",
    "File path from the request (path traversal)",
    Severity.HIGH,
    Threat.UNSAFE_HANDLER_CODE,
    "A file is opened, written or deleted at a path built from the event or request. '../' sequences or absolute "
    "paths reach other files: the function's code, /proc/self/environ (credentials), or /tmp files of earlier "
    "invocations.",
    "Generate file names (uuid4) under a per-invocation /tmp folder, or reduce the request value with "
    "os.path.basename and an allow-list of characters.",
    ("CWE-22", "OWASP Serverless Top 10 SAS-1"),
)
GLOBAL_CACHE = rule(
    "SAS-CODE-009",
    "Module-level state filled from request data",
    Severity.MEDIUM,
    Threat.CROSS_INVOCATION_CONTAMINATION,
    "A dict, list or set defined at module level is filled with request data inside the handler. Warm instances "
    "keep module state between invocations, so one caller's data is visible to (and can poison) the next caller's "
    "invocation, and memory grows without bound.",
    "Keep per-request data in local variables; if a cache is needed, key it by something the caller cannot "
    "choose, bound its size, and never return one caller's entries to another.",
    ("CWE-488",),
)
TRUST_REMOTE_CODE = rule(
    "SAS-CODE-010",
    "Model loaded with trust_remote_code=True",
    Severity.HIGH,
    Threat.UNTRUSTED_ARTIFACT_SOURCE,
    "trust_remote_code=True makes Hugging Face loaders download and run Python code that ships with the model "
    "repository, at load time, inside the function.",
    "Vendor the model code into the package (reviewed and scanned) and load with trust_remote_code=False, or pin "
    "the repository revision to a reviewed commit.",
    ("CWE-94", "MITRE ATLAS AML.T0010.003"),
)
KERAS_UNSAFE = rule(
    "SAS-CODE-011",
    "Keras model loaded with safe_mode=False",
    Severity.HIGH,
    Threat.UNSAFE_MODEL_ARTIFACT,
    "safe_mode=False lets a Keras file deserialize Lambda layers, that is arbitrary Python code, when loaded.",
    "Load with the default safe_mode=True; rebuild models that need Lambda layers with registered custom layers.",
    ("CWE-502", "MITRE ATLAS AML.T0011.000"),
)
SECRET_TOKEN = rule(
    "SAS-CODE-012",
    "Hard-coded credential",
    Severity.HIGH,
    Threat.SECRET_EXPOSURE,
    "The code holds a credential in a well-known format (AWS access key id, private key block, GitHub, Slack, "
    "Stripe, Google, Hugging Face or OpenAI token). Anyone who can read the package (or its layer, or the "
    "artifact bucket) has it.",
    "Revoke the credential, remove it from the code and its history, and read it at run time from the "
    "platform's secret store (Secrets Manager, Key Vault, Secret Manager) or use the function's role.",
    ("CWE-798", "OWASP Serverless Top 10 SAS-7", "MITRE ATLAS AML.T0055"),
)
SECRET_ASSIGNMENT = rule(
    "SAS-CODE-013",
    "Secret-looking value assigned in code",
    Severity.MEDIUM,
    Threat.SECRET_EXPOSURE,
    "A variable, argument or key named like a secret (password, token, api_key, secret...) is set to a literal "
    "string that looks random enough to be a real credential.",
    "Read secrets at run time from the platform's secret store or environment configuration backed by it.",
    ("CWE-798", "OWASP Serverless Top 10 SAS-7"),
)
LOG_EVENT = rule(
    "SAS-CODE-014",
    "Whole event or request logged",
    Severity.MEDIUM,
    Threat.SECRET_EXPOSURE,
    "The handler prints or logs its whole event or request body. Events carry authorization headers, API keys, "
    "session tokens and personal data; logs are kept long and read by many more people and roles than the function.",
    "Log selected, non-sensitive fields (request id, route, sizes), or use a logger that redacts headers.",
    ("CWE-532", "OWASP Serverless Top 10 SAS-5"),
)
TMP_RESIDUE = rule(
    "SAS-CODE-015",
    "Request data written to a fixed /tmp path",
    Severity.MEDIUM,
    Threat.CROSS_INVOCATION_CONTAMINATION,
    "The handler writes request data to a file in /tmp under a fixed name. /tmp survives between invocations of a "
    "warm instance: the next caller's invocation can read the previous caller's data, or be served it if a write "
    "fails half way.",
    "Write to a per-invocation name (tempfile.NamedTemporaryFile, or a uuid4 folder removed in a finally block).",
    ("CWE-488",),
)
