#!/usr/bin/env python3
"""Builds a Python agentsec skill into a WebAssembly component.

    python3 sdk/python/build.py SKILL_DIR -o OUT.wasm

SKILL_DIR holds the skill's module (``app.py`` unless ``--module`` says
otherwise) and any pure-Python helpers it imports. The build:

1. reads the ``agentsec_skill.needs(...)`` calls from the module's source
   (string literals at module level; anything else is an error naming the
   file, line and column);
2. runs componentize-py 0.25.1 against ``wit/`` (world ``skill``) with the
   skill directory and this SDK as the only Python path (no site-packages of
   the build machine end up in the component);
3. appends the ``agentsec:needs`` custom section to the component, so that
   ``agentsec-run`` refuses a run the policy cannot serve before it starts.

It needs no network. componentize-py is found with ``--componentize-py``,
then ``$COMPONENTIZE_PY``, then ``.venv-py/bin/componentize-py`` at the
repository root, then ``PATH``.

Exit codes: 0 built; 1 the skill or the toolchain failed (message on stderr);
2 usage.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import agentsec_skill  # noqa: E402  (the SDK's own validation and limits)

#: The componentize-py release this SDK is tested with (issue 21).
COMPONENTIZE_PY_VERSION = "0.25.1"

#: The generated module componentize-py loads as the app; it imports the
#: skill's module and exports ``run``. A leading underscore keeps it from
#: clashing with a skill's own modules.
ENTRY_MODULE = "_agentsec_entry"

#: The WIT world every skill targets.
WORLD = "skill"

#: Largest skill source read, in bytes. A skill's module is a few KiB; the
#: bound keeps a wrong path (a binary, a log) from being parsed whole.
MAX_SOURCE_SIZE = 4 * 1024 * 1024

#: WebAssembly preamble of a component: magic, then version 0x0d and layer 1.
COMPONENT_PREAMBLE = b"\0asm\x0d\x00\x01\x00"


class BuildError(Exception):
    """A build failure with a message for the skill's author."""


# --- declared needs, read from the source ----------------------------------


def declared_needs(source: str, filename: str) -> List[str]:
    """The needs declared by ``agentsec_skill.needs(...)`` calls in
    ``source``, in order, without duplicates.

    Recognises ``needs`` imported from ``agentsec_skill`` (under any alias)
    and ``agentsec_skill.needs`` (the module under any alias). Calls must be
    module-level statements whose arguments are non-empty string literals
    without control characters, so that what the component declares is what
    the source shows.
    """
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        raise BuildError(f"{filename}:{e.lineno}:{e.offset}: {e.msg}") from None
    func_names, module_names = _needs_names(tree)

    def is_needs(call: ast.Call) -> bool:
        f = call.func
        if isinstance(f, ast.Name):
            return f.id in func_names
        return (
            isinstance(f, ast.Attribute)
            and f.attr == "needs"
            and isinstance(f.value, ast.Name)
            and f.value.id in module_names
        )

    top_level = {
        id(stmt.value)
        for stmt in tree.body
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
    }
    found: List[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and is_needs(node)):
            continue
        where = f"{filename}:{node.lineno}:{node.col_offset + 1}"
        if id(node) not in top_level:
            raise BuildError(
                f"{where}: call needs() as a statement at module level, "
                "so the build can read it without running the skill"
            )
        if node.keywords:
            raise BuildError(f"{where}: needs() takes paths only, no keyword arguments")
        for arg in node.args:
            at = f"{filename}:{arg.lineno}:{arg.col_offset + 1}"
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                raise BuildError(
                    f"{at}: needs() takes string literals, e.g. "
                    'needs("communication.github.token")'
                )
            try:
                found.append(agentsec_skill.check_need(arg.value))
            except ValueError as e:
                raise BuildError(f"{at}: {e}") from None
    needs = list(dict.fromkeys(p.strip() for p in found))
    if len(needs) > agentsec_skill.MAX_NEEDS:
        raise BuildError(
            f"{filename}: {len(needs)} needs declared; agentsec-run accepts at most "
            f"{agentsec_skill.MAX_NEEDS}"
        )
    size = len(needs_payload(needs))
    if size > agentsec_skill.MAX_NEEDS_SIZE:
        raise BuildError(
            f"{filename}: the declared needs take {size} bytes; agentsec-run accepts "
            f"at most {agentsec_skill.MAX_NEEDS_SIZE}"
        )
    return needs


def _needs_names(tree: ast.Module) -> "tuple[set[str], set[str]]":
    """Names under which ``needs`` and the ``agentsec_skill`` module are
    imported anywhere in ``tree``."""
    funcs: set = set()
    modules: set = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "agentsec_skill":
            for a in node.names:
                if a.name == "needs":
                    funcs.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "agentsec_skill":
                    modules.add(a.asname or a.name)
    return funcs, modules


# --- the custom section ------------------------------------------------------


def leb128(n: int) -> bytes:
    """Unsigned LEB128, as WebAssembly encodes sizes."""
    if n < 0:
        raise ValueError("LEB128 of a negative number")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def custom_section(name: str, payload: bytes) -> bytes:
    """A custom section: id 0, the body's size, the length-prefixed name,
    the payload."""
    raw = name.encode("utf-8")
    body = leb128(len(raw)) + raw + payload
    return b"\x00" + leb128(len(body)) + body


def needs_payload(needs: Iterable[str]) -> bytes:
    """The section's text: one need per line, each ``\\n``-terminated."""
    return "".join(f"{n}\n" for n in needs).encode("utf-8")


def add_needs_section(component: bytes, needs: Sequence[str]) -> bytes:
    """``component`` with an ``agentsec:needs`` section appended at the top
    level (a component may carry custom sections anywhere among its
    sections); unchanged when there are no needs."""
    if not component.startswith(COMPONENT_PREAMBLE):
        raise BuildError("componentize-py's output is not a WebAssembly component")
    if not needs:
        return component
    return component + custom_section(agentsec_skill.NEEDS_SECTION, needs_payload(needs))


def read_uleb(data: bytes, pos: int) -> "tuple[int, int]":
    """Decodes unsigned LEB128 at ``pos``; returns (value, next position)."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 35:
            raise ValueError(f"bad LEB128 at offset {pos}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def top_level_custom_sections(component: bytes, name: str) -> List[bytes]:
    """Payloads of the top-level custom sections called ``name`` (for tests
    and ``--check``; the host's reader also looks inside nested modules)."""
    pos = len(COMPONENT_PREAMBLE)
    found = []
    while pos < len(component):
        sid = component[pos]
        size, body = read_uleb(component, pos + 1)
        end = body + size
        if end > len(component):
            raise ValueError(f"section at offset {pos} runs past the end")
        if sid == 0:
            nlen, npos = read_uleb(component, body)
            if component[npos : npos + nlen].decode("utf-8", "replace") == name:
                found.append(component[npos + nlen : end])
        pos = end
    return found


# --- the build ---------------------------------------------------------------

#: What is not copied from a skill directory into the component: bytecode
#: (componentize-py compiles the sources itself), virtual environments and
#: built components (``-o`` may point into the skill directory).
_NOT_SOURCE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".venv*", ".git", "*.wasm", "*.wasm.partial"
)


def entry_source(module: str, needs: Sequence[str]) -> str:
    """The generated app module: componentize-py imports it at build time
    (pre-initialisation), so the checks in ``_check_build`` fail the build."""
    return (
        "# Generated by sdk/python/build.py; not part of the skill's source.\n"
        "import wit_world\n"
        "import agentsec_skill\n"
        f"import {module}  # noqa: F401 - registers the @skill function\n"
        f"agentsec_skill._check_build({list(needs)!r})\n"
        "\n"
        "class WitWorld(wit_world.WitWorld):\n"
        "    def run(self, input: str) -> str:\n"
        "        return agentsec_skill._run_export(input)\n"
    )


def find_componentize_py(explicit: Optional[str]) -> str:
    candidates = [explicit, os.environ.get("COMPONENTIZE_PY")]
    candidates.append(str(REPO / ".venv-py" / "bin" / "componentize-py"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    on_path = shutil.which("componentize-py")
    if on_path:
        return on_path
    raise BuildError(
        "componentize-py not found; install it with\n"
        "  python3 -m venv .venv-py && .venv-py/bin/pip install -r "
        "sdk/python/requirements-build.txt\n"
        "(or pass --componentize-py PATH)"
    )


def check_version(tool: str) -> None:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    version = out.stdout.strip().rpartition(" ")[2]
    if out.returncode != 0 or version != COMPONENTIZE_PY_VERSION:
        print(
            f"warning: {tool} reports {out.stdout.strip() or out.stderr.strip()!r}; "
            f"this SDK is tested with componentize-py {COMPONENTIZE_PY_VERSION}",
            file=sys.stderr,
        )


def build(
    skill_dir: Path,
    output: Path,
    module: str = "app",
    tool: Optional[str] = None,
    extra_paths: Sequence[Path] = (),
    quiet: bool = False,
) -> List[str]:
    """Builds ``skill_dir`` into ``output``; returns the declared needs."""
    started = time.monotonic()
    skill_dir = skill_dir.resolve()
    extra_paths = [p.resolve() for p in extra_paths]
    if not module.isidentifier():
        raise BuildError(f"--module {module!r} is not a Python module name")
    src = skill_dir / f"{module}.py"
    try:
        with open(src, "rb") as f:
            raw = f.read(MAX_SOURCE_SIZE + 1)
    except OSError as e:
        raise BuildError(f"cannot read {src}: {e.strerror}") from None
    if len(raw) > MAX_SOURCE_SIZE:
        raise BuildError(f"{src} is larger than {MAX_SOURCE_SIZE} bytes; is it the skill's module?")
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BuildError(f"{src}: not UTF-8 (byte {e.start})") from None
    needs = declared_needs(source, str(src))

    tool = find_componentize_py(tool)
    check_version(tool)
    with tempfile.TemporaryDirectory(prefix="agentsec-pybuild-") as tmp:
        stage = Path(tmp)
        lib = stage / "lib"
        shutil.copytree(
            HERE / "agentsec_skill",
            lib / "agentsec_skill",
            ignore=_NOT_SOURCE,
        )
        (lib / f"{ENTRY_MODULE}.py").write_text(entry_source(module, needs), encoding="utf-8")
        # A copy, because componentize-py writes __pycache__ next to the
        # sources it imports: the skill's tree stays as it was.
        skill_copy = stage / "skill"
        shutil.copytree(skill_dir, skill_copy, ignore=_NOT_SOURCE)
        extra_copies = []
        for i, p in enumerate(extra_paths):
            extra_copies.append(stage / f"path{i}")
            shutil.copytree(p, extra_copies[-1], ignore=_NOT_SOURCE)
        # componentize-py adds $VIRTUAL_ENV's (else the build Python's)
        # site-packages to the path; an empty one keeps the component
        # independent of what the build machine has installed.
        empty_env = stage / "env"
        (empty_env / "lib" / "site-packages").mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if k != "PIPENV_ACTIVE"}
        env["VIRTUAL_ENV"] = str(empty_env)
        # componentize-py's own Rust backtrace buries the skill's traceback.
        env["RUST_BACKTRACE"] = env["RUST_LIB_BACKTRACE"] = "0"
        raw_out = stage / "component.wasm"
        cmd = [tool, "-d", str(REPO / "wit"), "-w", WORLD, "-q", "componentize", ENTRY_MODULE]
        for p in [lib, skill_copy, *extra_copies]:
            cmd += ["-p", str(p)]
        cmd += ["-o", str(raw_out)]
        done = subprocess.run(cmd, cwd=stage, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(
                f"componentize-py failed (exit {done.returncode}):\n"
                f"{(done.stderr or done.stdout).strip()}"
            )
        component = add_needs_section(raw_out.read_bytes(), needs)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(component)
    os.replace(partial, output)
    if not quiet:
        took = time.monotonic() - started
        print(
            f"built {output} ({len(component) / 1e6:.1f} MB) in {took:.1f} s; "
            f"declared needs: {', '.join(needs) if needs else 'none'}",
            file=sys.stderr,
        )
    return needs


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="build.py",
        description="Build a Python agentsec skill into a WebAssembly component.",
    )
    ap.add_argument("skill_dir", type=Path, help="directory holding the skill's module")
    ap.add_argument("-o", "--output", type=Path, required=True, help="component to write")
    ap.add_argument("--module", default="app", help="the skill's module in SKILL_DIR (default: app)")
    ap.add_argument("--componentize-py", dest="tool", help="componentize-py executable")
    ap.add_argument(
        "-p", "--python-path", dest="paths", type=Path, action="append", default=[],
        help="another directory of pure-Python modules the skill imports (repeatable)",
    )
    ap.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    args = ap.parse_args(argv)
    try:
        build(args.skill_dir, args.output, args.module, args.tool, args.paths, args.quiet)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
