"""example-skills/py-release-notes on the fake host: the same JSON as the
Rust release-notes, and the token reported by kind, never by value."""

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import Err

APP = Path(__file__).resolve().parents[3] / "example-skills" / "py-release-notes" / "app.py"
TOKEN = "ghp_planted-hunter2-value"


@pytest.fixture
def app(host):
    host.store["communication.github.token"] = TOKEN
    host.granted.add("communication.github.token")
    spec = importlib.util.spec_from_file_location("py_release_notes_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_output_matches_the_rust_skill(app):
    import agentsec_skill

    assert agentsec_skill._declared == ["communication.github.token"]
    out = agentsec_skill._run_export('{"repo":"acme/api","version":"v1.4.0","changes":["Faster deploys"]}')
    # What example-skills/release-notes (Rust, serde_json) prints for this input.
    assert out == (
        '{"token":{"kind":"classic personal access token","present":true},'
        '"would_publish":{"body":"## v1.4.0\\n\\n- Faster deploys\\n","repo":"acme/api",'
        '"tag":"v1.4.0","title":"acme/api v1.4.0"}}'
    )
    assert TOKEN not in out
    default = json.loads(agentsec_skill._run_export(""))
    assert default["would_publish"]["tag"] == "v0.1.0"
    assert default["would_publish"]["body"] == "## v0.1.0\n\n- Maintenance release.\n"


def test_bad_input_and_denial(app, host):
    import agentsec_skill

    with pytest.raises(Err, match="^input is not JSON: "):
        agentsec_skill._run_export("{")
    host.granted.clear()
    with pytest.raises(Err, match="^denied: agent may not read `communication.github.token`"):
        agentsec_skill._run_export("{}")


@pytest.mark.parametrize(
    "token, kind",
    [("github_pat_x", "fine-grained personal access token"), ("ghp_x", "classic personal access token"),
     ("ghs_x", "GitHub App installation token"), ("gho_x", "OAuth token"), ("", "empty"),
     ("xyz", "unrecognised format")],
)
def test_token_kind(app, token, kind):
    assert app.token_kind(token) == kind
