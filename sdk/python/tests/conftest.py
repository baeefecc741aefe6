"""Fakes of the modules componentize-py generates inside a component
(``wit_world.imports.secrets``, ``componentize_py_types``), so the SDK is
tested on the host with no toolchain and no network."""

import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class Err(Exception):
    """``componentize_py_types.Err``: the generated code raises it for a WIT
    ``result``'s error; ``value`` is the error payload."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


def _case(name):
    return dataclass(type(name, (), {"__annotations__": {"value": str}}))


class FakeSecrets(types.ModuleType):
    """A store of path -> value behind a policy of granted paths."""

    def __init__(self):
        super().__init__("wit_world.imports.secrets")
        self.Error_Denied = _case("Error_Denied")
        self.Error_NotFound = _case("Error_NotFound")
        self.Error_InvalidPath = _case("Error_InvalidPath")
        self.Error_Unavailable = _case("Error_Unavailable")
        self.store = {}
        self.granted = set()
        self.down = False
        self.calls = []

    def get_secret(self, path):
        self.calls.append(path)
        if self.down:
            raise Err(self.Error_Unavailable("store down"))
        if ".." in path:
            raise Err(self.Error_InvalidPath(f"`{path}` has an empty segment"))
        if path not in self.granted:
            raise Err(self.Error_Denied(f"agent may not read `{path}`"))
        if path not in self.store:
            raise Err(self.Error_NotFound(f"no secret `{path}`"))
        return self.store[path]

    def list_secrets(self, prefix):
        return [p for p in self.store if p.startswith(prefix) and p in self.granted]


@pytest.fixture
def host(monkeypatch):
    """Installs fresh fake bindings; yields the fake secrets module."""
    fake = FakeSecrets()
    world = types.ModuleType("wit_world")
    imports = types.ModuleType("wit_world.imports")
    imports.secrets = fake
    world.imports = imports
    cpt = types.ModuleType("componentize_py_types")
    cpt.Err = Err
    monkeypatch.setitem(sys.modules, "wit_world", world)
    monkeypatch.setitem(sys.modules, "wit_world.imports", imports)
    monkeypatch.setitem(sys.modules, "wit_world.imports.secrets", fake)
    monkeypatch.setitem(sys.modules, "componentize_py_types", cpt)
    import agentsec_skill

    monkeypatch.setattr(agentsec_skill, "_registered", None)
    monkeypatch.setattr(agentsec_skill, "_declared", [])
    yield fake
