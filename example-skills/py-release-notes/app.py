"""`py-release-notes`: drafts the release notes it would publish to GitHub,
and checks that the token it would publish with is usable, without showing it.

The Python twin of `example-skills/release-notes` (Rust): the same input and
output JSON.

Input: `{"repo": "acme/api", "version": "v1.4.0", "changes": ["..."]}`.
Reads `communication.github.token`. Output: the draft and the token check.

Build: `python3 sdk/python/build.py example-skills/py-release-notes -o py_release_notes.wasm`.
"""

import json

from agentsec_skill import Failure, get_secret, needs, skill

needs("communication.github.token")


@skill
def run(input: str) -> str:
    try:
        args = json.loads(input if input.strip() else "{}")
    except ValueError as e:
        raise Failure(f"input is not JSON: {e}") from None
    if not isinstance(args, dict):
        args = {}
    repo = _text(args.get("repo"), "acme/api")
    version = _text(args.get("version"), "v0.1.0")
    changes = args.get("changes")
    changes = [c for c in changes if isinstance(c, str)] if isinstance(changes, list) else []

    token = get_secret("communication.github.token")
    kind = token_kind(token.expose())

    body = f"## {version}\n\n"
    if not changes:
        body += "- Maintenance release.\n"
    for change in changes:
        body += f"- {change}\n"
    return json.dumps(
        {
            "would_publish": {
                "repo": repo,
                "tag": version,
                "title": f"{repo} {version}",
                "body": body,
            },
            "token": {"present": bool(token), "kind": kind},
        },
        separators=(",", ":"),
        sort_keys=True,  # serde_json orders keys: byte-identical to the Rust skill
        ensure_ascii=False,
    )


def _text(value, default: str) -> str:
    return value if isinstance(value, str) else default


def token_kind(token: str) -> str:
    """The kind of GitHub token, from its documented prefix."""
    if token.startswith("github_pat_"):
        return "fine-grained personal access token"
    if token.startswith("ghp_"):
        return "classic personal access token"
    if token.startswith("ghs_"):
        return "GitHub App installation token"
    if token.startswith("gho_"):
        return "OAuth token"
    if token == "":
        return "empty"
    return "unrecognised format"
