"""build.py: needs read from the source, the custom section's bytes, and
(when componentize-py is installed) a real build."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import build
from build import BuildError

NEEDS = "agentsec:needs"


def needs_of(src):
    return build.declared_needs(src, "app.py")


def test_reads_literal_needs_under_any_import_form():
    src = '''
import agentsec_skill
import agentsec_skill as sk
from agentsec_skill import needs, needs as declare
needs("a.b", "c.*.d")
declare(" e.f ")
sk.needs("a.b")
agentsec_skill.needs('["x.y"]["z"]')
other.needs(1)        # not ours: ignored
def needs_like(): pass
'''
    assert needs_of(src) == ["a.b", "c.*.d", "e.f", '["x.y"]["z"]']
    assert needs_of("import json\n") == []


@pytest.mark.parametrize(
    "src, message",
    [
        ("from agentsec_skill import needs\nP = 'a'\nneeds(P)\n", "app.py:3:7: needs() takes string literals"),
        ("from agentsec_skill import needs\nneeds(*['a'])\n", "app.py:2:7: needs() takes string literals"),
        ("from agentsec_skill import needs\nneeds(f'a{1}')\n", "app.py:2:7: needs() takes string literals"),
        ("from agentsec_skill import needs\nneeds(path='a')\n", "app.py:2:1: needs() takes paths only"),
        ("from agentsec_skill import needs\ndef f():\n    needs('a')\n", "app.py:3:5: call needs() as a statement at module level"),
        ("import agentsec_skill\nx = agentsec_skill.needs('a')\n", "app.py:2:5: call needs() as a statement"),
        ("from agentsec_skill import needs\nneeds('')\n", "app.py:2:7: a declared need is empty"),
        ("from agentsec_skill import needs\nneeds('a\\nb')\n", "app.py:2:7: the declared need 'a\\nb' holds a control character at index 1"),
        ("def (:\n", "app.py:1:5: invalid syntax"),
    ],
)
def test_refuses_needs_it_cannot_read_statically(src, message):
    with pytest.raises(BuildError) as e:
        needs_of(src)
    assert str(e.value).startswith(message), str(e.value)


def test_refuses_needs_over_the_host_limits():
    many = ", ".join(f"'p{i}'" for i in range(257))
    with pytest.raises(BuildError, match="257 needs declared; agentsec-run accepts at most 256"):
        needs_of(f"from agentsec_skill import needs\nneeds({many})\n")
    big = "a" * (64 * 1024)
    with pytest.raises(BuildError, match="at most 65536"):
        needs_of(f"from agentsec_skill import needs\nneeds('{big}')\n")


@pytest.mark.parametrize(
    "n, encoded",
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
     (16384, b"\x80\x80\x01")],
)
def test_leb128(n, encoded):
    assert build.leb128(n) == encoded
    assert build.read_uleb(encoded + b"\xff", 0) == (n, len(encoded))


def test_section_bytes_are_as_the_spec_says():
    sec = build.custom_section(NEEDS, b"a.b\n")
    assert sec == b"\x00\x13\x0eagentsec:needsa.b\n"
    big = build.custom_section(NEEDS, b"x" * 200)
    assert big[:3] == b"\x00\xd7\x01"  # 1 + 14 + 200 = 215 = 0xd7, two LEB128 bytes


def test_the_section_is_appended_at_the_top_level():
    comp = build.COMPONENT_PREAMBLE + build.custom_section("other", b"x")
    out = build.add_needs_section(comp, ["a.b", "c.*.d"])
    assert out.startswith(comp)
    assert build.top_level_custom_sections(out, NEEDS) == [b"a.b\nc.*.d\n"]
    assert build.top_level_custom_sections(out, "other") == [b"x"]
    assert build.add_needs_section(comp, []) == comp
    core_module = b"\0asm\x01\x00\x00\x00"
    with pytest.raises(BuildError, match="not a WebAssembly component"):
        build.add_needs_section(core_module, ["a"])
    with pytest.raises(ValueError, match="runs past the end"):
        build.top_level_custom_sections(build.COMPONENT_PREAMBLE + b"\x00\x7f", NEEDS)


def test_entry_module_is_valid_python():
    src = build.entry_source("app", ["a.b", "it's"])
    compile(src, "_agentsec_entry.py", "exec")
    assert "agentsec_skill._check_build(['a.b', \"it's\"])" in src


def test_usage_errors_name_the_problem(tmp_path, capsys):
    assert build.main([str(tmp_path), "-o", str(tmp_path / "o.wasm")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert build.main([str(tmp_path), "-o", "o.wasm", "--module", "a-b"]) == 1
    assert "not a Python module name" in capsys.readouterr().err


def _tool():
    try:
        return build.find_componentize_py(None)
    except BuildError:
        return None


@pytest.mark.skipif(_tool() is None, reason="componentize-py is not installed")
def test_a_real_build_carries_the_section_and_leaves_the_source_alone(tmp_path):
    skill = tmp_path / "skill"
    skill.mkdir()
    (skill / "app.py").write_text(
        "from agentsec_skill import needs, skill\n"
        "needs('communication.github.token', 'databases.*.staging.password')\n"
        "@skill\n"
        "def run(input):\n"
        "    return input\n"
    )
    out = tmp_path / "out" / "s.wasm"
    assert build.build(skill, out, quiet=True) == [
        "communication.github.token",
        "databases.*.staging.password",
    ]
    data = out.read_bytes()
    assert build.top_level_custom_sections(data, NEEDS) == [
        b"communication.github.token\ndatabases.*.staging.password\n"
    ]
    assert sorted(p.name for p in skill.iterdir()) == ["app.py"]  # no __pycache__

    # A skill without @skill fails the build (componentize-py imports it).
    (skill / "app.py").write_text("import agentsec_skill\n")
    with pytest.raises(BuildError, match="no function is decorated with @agentsec_skill.skill"):
        build.build(skill, tmp_path / "bad.wasm", quiet=True)
    assert not (tmp_path / "bad.wasm").exists()

    # needs() hidden in a helper module: the import-time cross-check catches it.
    (skill / "helper.py").write_text("import agentsec_skill\nagentsec_skill.needs('hidden.path')\n")
    (skill / "app.py").write_text("import helper\nfrom agentsec_skill import skill\nskill(lambda i: i)\n")
    with pytest.raises(BuildError, match=r"needs\(\) at import declared \['hidden.path'\], the source declares \[\]"):
        build.build(skill, tmp_path / "bad.wasm", quiet=True)
