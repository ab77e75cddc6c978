#!/usr/bin/env python3
"""Render the committed real chat templates the way transformers' apply_chat_template does.

The environment is transformers' (utils/chat_template_utils.py _compile_jinja_template):
jinja2's ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
loopcontrols extension and a {% generation %} block that renders its body, the tojson filter
replaced by json.dumps(x, ensure_ascii=False, indent=indent, separators=separators,
sort_keys=sort_keys), and the globals raise_exception (TemplateError) and strftime_now. The
render arguments are apply_chat_template's: messages, tools, documents, add_generation_prompt
and the tokenizer's special tokens (bos_token, eos_token, ...) plus any extra keyword.
strftime_now reads a fixed clock (2026-01-15 09:30) so the fixture does not depend on the day.

Needs only Debian's python3-jinja2 (no transformers). Run from the repository root:

    /usr/bin/python3 scripts/render_chat_templates.py

Output: tests/ChainLora.Tests/Fixtures/chat_templates/expected.json (and the cases it renders,
conversations.json).
"""

import datetime
import glob
import json
import os

import jinja2
import jinja2.ext
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR = os.path.join(ROOT, "tests", "ChainLora.Tests", "Fixtures", "chat_templates")
CLOCK = datetime.datetime(2026, 1, 15, 9, 30, 0)
SPECIAL = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]


class GenerationBlock(Extension):
    """transformers' AssistantTracker without the tracking: {% generation %}...{% endgeneration %} renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return CLOCK.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Zürich"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello, how are you?"}],
    "multi_turn": [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "2 + 2 = 4."},
        {"role": "user", "content": "And times 3?"}],
    "system_multi_turn": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one."},
        {"role": "assistant", "content": "Red."}],
    "whitespace": [
        {"role": "user", "content": "  padded question \n\n"},
        {"role": "assistant", "content": "\n  padded answer  "}],
    "unicode": [
        {"role": "system", "content": "Réponds en français. 日本語も可。"},
        {"role": "user", "content": "Ça va? 😀 \"quoted\" and \\backslash\\"},
        {"role": "assistant", "content": "Très bien — merci! 🎉"}],
    "thinking": [
        {"role": "user", "content": "Is 17 prime?"},
        {"role": "assistant", "content": "<think>\nCheck divisors up to 4.\n</think>\n\nYes, 17 is prime."},
        {"role": "user", "content": "And 21?"},
        {"role": "assistant", "content": "<think>\n21 = 3 * 7.\n</think>\n\nNo: 21 = 3 × 7."}],
    "content_parts": [
        {"role": "system", "content": [{"type": "text", "text": "Describe briefly."}]},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image"}]},
        {"role": "assistant", "content": [{"type": "text", "text": " A cat. "}]}],
    "tool_call": [
        {"role": "user", "content": "What's the weather in Zürich?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function", "function": {
            "name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "call12345", "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"},
        {"role": "assistant", "content": "It is 21.5 °C and clear."}],
    "assistant_first": [
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "Hello."}],
}

# (conversation, extra keyword arguments); every case is rendered with add_generation_prompt False and True.
CASES = [
    ("user", {}), ("multi_turn", {}), ("system_multi_turn", {}), ("whitespace", {}), ("unicode", {}),
    ("thinking", {}), ("thinking", {"enable_thinking": False}), ("content_parts", {}),
    ("tool_call", {"tools": [WEATHER_TOOL]}), ("tool_call", {}), ("user", {"tools": [WEATHER_TOOL]}),
    ("user", {"date_string": "01 Feb 2025"}), ("assistant_first", {}),
]


# Small templates pinning jinja2's semantics one construct at a time: (template, variables).
SNIPPETS = [
    ("{% set x = 0 %}{% for i in [1,2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}", {}),
    ("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", {}),
    ("{{ none }}|{{ [1, 'a', none, true, 1.0, {'k': 'v'}] }}|{{ 'it''s' }}|{{ [\"it's\"] }}|{{ ('a',) }}|{{ (1, 2) }}", {}),
    ("{{ d.y }}|{{ d.y is defined }}|{{ d['y'] is defined }}|{{ u | length }}|{{ u | trim }}|{{ u ~ 'a' }}|{{ u == 1 }}", {"d": {}}),
    ("{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1.0 }} {{ 1e-5 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 123456.789 }} {{ 3 * 'ab' }}", {}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.keys() | list }}{{ d.get('a') }}{{ d.get('z', 9) }}", {"d": {"b": 1, "a": 2}}),
    ("{{ [3, 1, 2] | sort | list }} {{ 'abc'[::-1] }} {{ 'a,b'.split(',') }} {{ ' a  b '.split() }} {{ 'x'[5:] }} {{ [1,2,3,4][1:-1] }} {{ [1,2,3][::2] }}", {}),
    ("{% if true %}\n  x\n{% endif %}\n  {{ 'y' }}\nz\n", {}),
    ("  {% if true %}\n  x\n  {%- endif %}  \nq", {}),
    ("a  {%- if true -%}  b  {%- endif -%}  c\n{# comment #}\n  {#- c2 -#}  d", {}),
    ("{% for m in ms %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.cycle('x', 'y') }}{% endfor %}", {"ms": [1, 2, 3]}),
    ("{% for m in ms if m > 1 %}{{ m }}{{ loop.length }}{% else %}empty{% endfor %}|{% for m in [] %}x{% else %}none{% endfor %}", {"ms": [1, 2, 3]}),
    ("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("{{ x | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}|{{ none | default('d') }}", {}),
    ("{{ {'a': 1, 'b': [1.5, 'é\"\\n', none, true]} | tojson }}|{{ {'a': {'b': []}} | tojson(indent=2) }}|{{ 'x' | tojson }}", {}),
    ("{{ '  hi  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'a\nb' | indent(2) }}|{{ 'a\n\nb' | indent(2, true) }}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}", {}),
    ("{{ ms | map(attribute='role') | join(', ') }}|{{ ms | selectattr('role', 'equalto', 'user') | list | length }}|{{ ms | rejectattr('role', 'eq', 'user') | map(attribute='content') | first }}", {"ms": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}),
    ("{{ [1, 2, 3] | select('odd') | list }}|{{ [1, 2, 3] | reject('odd') | list }}|{{ [1, 2, 2, 'A', 'a'] | unique | list }}|{{ [1, 2, 3] | sum }}|{{ [3, 1] | min }}|{{ ['b', 'A'] | max }}", {}),
    ("{{ 'abc'.startswith('a') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'a-b-c'.rsplit('-', 1) }}{{ 'a-b-c'.split('-', 1) }}{{ '\n\nx\n'.lstrip('\n') }}{{ 'x'.upper() }}{{ 'Ab'.lower() }}{{ 'a b'.title() }}{{ 'aXa'.replace('a', 'b') }}", {}),
    ("{{ x is string }}{{ x is mapping }}{{ x is iterable }}{{ x is sequence }}{{ x is number }}{{ 3 is integer }}{{ 3.0 is float }}{{ none is none }}{{ u is iterable }}{{ 4 is divisibleby 2 }}{{ 3 is odd }}{{ 'a' in 'abc' }}{{ 'z' not in ['a'] }}", {"x": "s"}),
    ("{{ 'x' if false }}|{{ 'a' if 1 > 2 else 'b' }}|{{ 1 < 2 < 3 }}|{{ not 1 == 2 }}|{{ 0 or 'z' }}|{{ 1 and 'y' }}|{{ - 3 }}|{{ (1, 2)[0] }}", {}),
    ("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }}{{ greet('Bo', '?') }}{{ greet(name='Cy') }}", {}),
    ("{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set block %}in {{ a }}{% endset %}[{{ block }}]", {}),
    ("{% raw %}{{ not rendered }}{% endraw %}|{{ '%d-%s' }}", {}),
    ("{{ \"tab\\there\" }}|{{ 'uni\\u00e9' }}|{{ 'q\\'s' }}|{{ ['a\\nb', 'c\\'d'] }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ u + 'a' }}", {}),
    ("{{ d.y.z }}", {"d": {}}),
    ("{{ raise_exception('Custom failure: ' ~ 42) }}", {}),
    ("{{ [1,2,3] | length }} {{ {'a':1} | length }} {{ 'héllo' | length }} {{ 'x' * 3 }} {{ 10 % 3 }} {{ 2.5 // 1 }} {{ -1 // 2 }}", {}),
    ("{{ ms[0]['content'] | trim }}|{{ ms[5] is defined }}|{{ ms[-1].content }}", {"ms": [{"content": [{"type": "text"}]}, {"content": "last"}]}),
    ("{{ 1 == 1.0 }}{{ true == 1 }}{{ [1] == [1] }}{{ {'a': 1} == {'a': 1} }}{{ 'a' < 'b' }}{{ none == none }}", {}),
    ("{{ 'x' ~ 1 ~ none ~ true }}|{{ 5 | string }}{{ 1.5 | int }}{{ '3' | int + 1 }}{{ '2.5' | float }}{{ -2 | abs }}{{ 2.567 | round(2) }}{{ 2.5 | round }}", {}),
    ("{%- for message in messages %}\n    {%- if message.role == 'user' %}\n        {{- 'U:' + message.content }}\n    {%- endif %}\n{%- endfor %}\n", {"messages": [{"role": "user", "content": "a"}, {"role": "x", "content": "b"}]}),
    ("{{ 'a' }}\n{{ 'b' }}\n\n{% if true %}\n{{ 'c' }}\n{% endif %}\n", {}),
    ("{{ {'k': 1}.items() | list }}|{{ d | items | list }}|{{ d | dictsort }}|{{ (d | list)[0] }}", {"d": {"z": 1, "b": 2}}),
]


def render_snippets(env):
    out = []
    for source, variables in SNIPPETS:
        entry = {"template": source, "variables": variables}
        try:
            entry["rendered"] = env.from_string(source).render(**variables)
        except jinja2.exceptions.TemplateError as e:
            entry["error"] = type(e).__name__
            entry["message"] = str(e)
        except Exception as e:
            entry["error"] = type(e).__name__
            entry["message"] = str(e)
        out.append(entry)
    return out


def main():
    env = environment()
    results = []
    for path in sorted(glob.glob(os.path.join(DIR, "*", "tokenizer_config.json"))):
        name = os.path.basename(os.path.dirname(path))
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        template = env.from_string(config["chat_template"])
        specials = {k: config[k] for k in SPECIAL if isinstance(config.get(k), str)}
        for conversation, extra in CASES:
            for add_generation_prompt in (False, True):
                kwargs = dict(extra)
                tools = kwargs.pop("tools", None)
                entry = {"template": name, "conversation": conversation, "add_generation_prompt": add_generation_prompt,
                         "tools": tools is not None, "kwargs": kwargs}
                try:
                    entry["rendered"] = template.render(messages=json.loads(json.dumps(CONVERSATIONS[conversation])), tools=tools,
                                                        documents=None, add_generation_prompt=add_generation_prompt,
                                                        **{**specials, **kwargs})
                except jinja2.exceptions.TemplateError as e:
                    entry["error"] = f"{type(e).__name__}: {e}"
                except Exception as e:  # the template's own failure on an input it does not handle
                    entry["error"] = f"{type(e).__name__}: {e}"
                results.append(entry)
    with open(os.path.join(DIR, "conversations.json"), "w", encoding="utf-8") as f:
        json.dump({"conversations": CONVERSATIONS, "weather_tool": WEATHER_TOOL, "clock": CLOCK.isoformat()}, f, ensure_ascii=False, indent=1)
    with open(os.path.join(DIR, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "scripts/render_chat_templates.py (jinja2 %s, transformers' environment)" % jinja2.__version__,
                   "renderings": results}, f, ensure_ascii=False, indent=1)
    snippets = render_snippets(env)
    with open(os.path.join(DIR, "jinja-semantics.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "scripts/render_chat_templates.py (jinja2 %s, transformers' environment)" % jinja2.__version__,
                   "snippets": snippets}, f, ensure_ascii=False, indent=1)
    print(f"{len(snippets)} snippets ({sum('error' in x for x in snippets)} raise)")
    errors = sum("error" in r for r in results)
    print(f"{len(results)} renderings ({errors} raise) of {len(set(r['template'] for r in results))} templates")


if __name__ == "__main__":
    main()
