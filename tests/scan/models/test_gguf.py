"""GGUF analyzer: files built with gguf.GGUFWriter, chat templates benign and hostile, hostile headers."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sas.scan.artifact import file_from_bytes
from sas.scan.context import ScanContext
from sas.scan.engine import scan
from sas.scan.models.gguf_scan import GGML_BLOCKS, GGUFAnalyzer
from sas.scan.models.gguf_template import analyze_template
from sas.taxonomy import Severity

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA31_TOOLS = """{{- bos_token }}
{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}
{%- if not tools_in_user_message is defined %}{%- set tools_in_user_message = true %}{%- endif %}
{%- if not date_string is defined %}{%- if strftime_now is defined %}{%- set date_string = strftime_now("%d %b %Y") %}
{%- else %}{%- set date_string = "26 Jul 2024" %}{%- endif %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}
{%- set messages = messages[1:] %}{%- else %}{%- set system_message = "" %}{%- endif %}
{%- set ns = namespace(found=false) %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if tools is not none %}{{- "Environment: ipython\\n" }}{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}{{- "Today Date: " + date_string + "\\n\\n" }}
{%- for t in tools %}{{- t | tojson(indent=4) }}{{- "\\n\\n" }}{%- endfor %}
{{- system_message }}{{- "<|eot_id|>" }}
{%- for message in messages %}
  {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
  {%- elif 'tool_calls' in message %}
    {%- if not message.tool_calls|length == 1 %}
      {{- raise_exception("This model only supports single tool-calls at once!") }}
    {%- endif %}
    {%- set tool_call = message.tool_calls[0].function %}
    {{- '{"name": "' + tool_call.name + '", ' }}{{- '"parameters": ' }}{{- tool_call.arguments | tojson }}{{- "}" }}
  {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}
"""
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
    "'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles "
    "are supported!') }}{% endif %}{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + "
    "message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{'<start_of_turn>model\n'}}{% endif %}{# a comment mentioning __class__ is not code #}"
)
NORMAL_TEMPLATES = [LLAMA3, CHATML, LLAMA31_TOOLS, MISTRAL, GEMMA]

# CVE-2024-34359 (llama-cpp-python) and common SSTI variants.
HOSTILE_TEMPLATES = [
    '{% for x in ().__class__.__base__.__subclasses__() %}{% if "warning" in x.__name__ %}'
    "{{x()._module.__builtins__['__import__']('os').popen(\"touch /tmp/pwned\")}}{%endif%}{% endfor %}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__['os'].system('id') }}",
    "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum|attr('__globals__')|attr('__getitem__')('os')|attr('popen')('id')|attr('read')() }}",
    "{{ ()|attr('__cla' ~ 'ss__')|attr('__ba' ~ 'se__') }}",
    '{{ ()|attr("\\x5f\\x5fclass\\x5f\\x5f") }}',
    "{{ request|attr('application')|attr('\\u005f\\u005fglobals\\u005f\\u005f') }}",
    "{{ messages.__class__.__mro__[1].__subclasses__() }}",
    "{% set x = 'ev' ~ 'al' %}{{ x }}{{ x.f_globals }}",
    "{% set a = '__cla' %}{% set b = 'ss__' %}{{ messages[a ~ b] }}",
    "{{ messages[('%c%c'|format(95, 95)) ~ 'class' ~ ('%c%c'|format(95, 95))] }}",
    "{{ messages[['__cl', 'ass__']|join] }}",
]


def write_gguf(path: Path, template: str | None, key: str = "tokenizer.chat_template") -> None:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    if template is not None:
        if key == "tokenizer.chat_template":
            writer.add_chat_template(template)
        else:
            writer.add_string(key, template)
    writer.add_token_list(["<s>", "</s>", "hello", "world"] * 50)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.add_tensor("output.weight", np.ones((8, 4), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def scan_findings(path: Path) -> list[tuple[str, Severity, str]]:
    return [(f.rule_id, f.severity, f.message) for f in scan(path).findings]


@pytest.mark.parametrize("template", NORMAL_TEMPLATES, ids=["llama3", "chatml", "llama31-tools", "mistral", "gemma"])
def test_normal_chat_templates_give_nothing_at_high(template: str) -> None:
    assert [h for h in analyze_template(template) if h.severity >= Severity.MEDIUM] == []


@pytest.mark.parametrize("template", HOSTILE_TEMPLATES)
def test_hostile_templates_are_high_or_critical(template: str) -> None:
    hits = analyze_template(template)
    assert hits and hits[0].severity >= Severity.HIGH, hits


def test_payload_inside_raw_block_is_text_not_code() -> None:
    assert analyze_template("{% raw %}{{ cycler.__init__ }}{% endraw %}{{ messages[0]['content'] }}") == []


def test_closing_delimiter_inside_string_does_not_hide_payload() -> None:
    hits = analyze_template("{{ '}}' ~ cycler.__init__.__globals__ }}")
    assert hits and hits[0].severity is Severity.CRITICAL


def test_real_gguf_with_normal_template_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    write_gguf(path, LLAMA31_TOOLS)
    result = scan(path)
    assert [f for f in result.findings if f.severity >= Severity.MEDIUM] == []
    (component,) = result.components
    assert component.format == "gguf" and component.kind == "model" and len(component.sha256) == 64


def test_real_gguf_with_ssti_template_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    write_gguf(path, HOSTILE_TEMPLATES[0])
    found = scan_findings(path)
    assert any(r == "SAS-GGUF-001" and s is Severity.CRITICAL for r, s, _ in found)


def test_named_template_keys_are_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "no-extension"
    write_gguf(path, "{{ cycler.__init__.__globals__.os.popen('id') }}", key="tokenizer.chat_template.tool_use")
    found = scan_findings(path)
    assert any("tokenizer.chat_template.tool_use" in m and s is Severity.CRITICAL for _, s, m in found)


def test_ggml_block_table_matches_gguf_package() -> None:
    for qtype, (block, size) in gguf.GGML_QUANT_SIZES.items():
        assert GGML_BLOCKS[int(qtype)] == (block, size), qtype


@pytest.mark.parametrize("keep", [0, 4, 12, 23, 100, 400])
def test_truncated_gguf_is_a_finding(tmp_path: Path, keep: int) -> None:
    src = tmp_path / "src.gguf"
    write_gguf(src, CHATML)
    path = tmp_path / "cut.gguf"
    path.write_bytes(src.read_bytes()[:keep])
    found = scan_findings(path)
    assert found and all(r.startswith("SAS-") for r, _, _ in found)


def test_tensor_data_cut_off_is_a_finding(tmp_path: Path) -> None:
    src = tmp_path / "src.gguf"
    write_gguf(src, CHATML)
    path = tmp_path / "cut.gguf"
    path.write_bytes(src.read_bytes()[:-64])
    assert "SAS-GGUF-004" in {r for r, _, _ in scan_findings(path)}


def test_absurd_counts_end_quickly_as_a_finding() -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 2**60, 2**62) + b"\0" * 64
    ctx = ScanContext()
    GGUFAnalyzer().analyze(file_from_bytes(data, "x.gguf"), ctx)
    assert [f.rule_id for f in ctx.findings] == ["SAS-SCAN-001"]


def test_huge_string_length_is_a_finding() -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**63) + b"key"
    ctx = ScanContext()
    GGUFAnalyzer().analyze(file_from_bytes(data, "x.gguf"), ctx)
    assert [f.rule_id for f in ctx.findings] == ["SAS-SCAN-001"]


def test_named_gguf_but_is_not(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"<html>not a model</html>")
    assert {r for r, _, _ in scan_findings(path)} == {"SAS-SCAN-003"}


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("gguf") / "s.gguf"
    write_gguf(path, CHATML)
    return path.read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_gguf_never_raises(small_gguf: bytes, data: st.DataObject) -> None:
    base = bytearray(small_gguf)
    for _ in range(data.draw(st.integers(1, 6))):
        base[data.draw(st.integers(4, 600))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(4, len(base)))
    ctx = ScanContext()
    GGUFAnalyzer().analyze(file_from_bytes(bytes(base[:cut]), "m.gguf"), ctx)
    assert all(f.rule_id.startswith("SAS-") for f in ctx.findings)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="{}%#-_.()[]|~'\"\\ abcx5fos", max_size=120))
def test_template_lexer_never_raises(template: str) -> None:
    analyze_template(template)


@pytest.mark.parametrize(
    "template",
    [
        "{% set sys = messages[0]['content'] %}{{ '<<SYS>>' + sys + '<</SYS>>' }}",
        "{{ message.system if message.system is defined }}",
        "{%- if message.content.startswith('<tool_response>') %}{{ content.split('</think>')[-1].lstrip('\\n') }}"
        "{%- endif %}",
        "{{ '<tool_call>\\n{\"name\": \"' }}{{ tool_call.name }}{{ '}\\n</tool_call>' }}",
    ],
)
def test_ordinary_words_that_look_dangerous_are_not_flagged(template: str) -> None:
    assert [h for h in analyze_template(template) if h.severity >= Severity.MEDIUM] == []
