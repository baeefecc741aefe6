"""Write agentsec skills in Python.

A skill is a WebAssembly component that exports ``run`` and reads secrets
through the host, which checks every request against the operator's policy
and audits it. This package wraps the bindings componentize-py generates from
``wit/`` (world ``agentsec:skill/skill``) so that a skill is a few lines::

    from agentsec_skill import get_secret, needs, skill

    needs("communication.github.token")

    @skill
    def run(input: str) -> str:
        token = get_secret("communication.github.token")
        return f"token has {len(token)} characters"

Build it with ``python3 sdk/python/build.py DIR -o OUT.wasm`` (see
``sdk/python/README.md``); the result is a component ``agentsec-run`` runs.

:class:`Secret` never shows its value in ``repr()``, ``str()``, f-strings,
``json.dumps`` or ``pickle``; :meth:`Secret.expose` is the one way to the
text. The host additionally redacts every value it released from the skill's
result, stdout and stderr, so echoing a secret gains nothing; treat values as
opaque and report facts about them (present, well formed), not the values.

Mirrors the Rust SDK (``sdk/rust``): ``get_secret``, ``list_secrets``, typed
errors named after the WIT cases, and ``needs`` for the ``agentsec:needs``
custom section.
"""

from __future__ import annotations

import sys
import traceback
import unicodedata
from typing import Callable, ClassVar, List, NoReturn, Optional

__all__ = [
    "NEEDS_SECTION",
    "Denied",
    "Error",
    "Failure",
    "InvalidPath",
    "NotFound",
    "Secret",
    "Unavailable",
    "get_secret",
    "list_secrets",
    "needs",
    "skill",
]

#: Name of the custom section that holds a skill's declared needs: UTF-8
#: text, one secret path (or pattern with whole-segment ``*``) per line. The
#: build step (``sdk/python/build.py``) writes it from the skill's
#: :func:`needs` calls; ``agentsec-run`` reads it before the skill runs.
NEEDS_SECTION = "agentsec:needs"

#: Largest total size of the needs section the host accepts, in bytes
#: (``runtime/host/src/needs.rs``: ``MAX_NEEDS_SIZE``). Checked at build time
#: so that a skill the host would refuse is not built.
MAX_NEEDS_SIZE = 64 * 1024

#: Most declared needs the host accepts (``MAX_NEEDS`` in the host).
MAX_NEEDS = 256


class Error(Exception):
    """Why the host did not return a secret; one subclass per WIT case.

    ``message`` is the host's explanation, a sentence that never contains a
    secret value. ``str(e)`` prints it after the case's WIT name
    (``denied: agent ... may not read ...``), which is also what ``run``
    returns as its error when the exception is not caught.
    """

    #: The case's name as in ``wit/``.
    kind: ClassVar[str] = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.message == other.message  # type: ignore[attr-defined]

    __hash__ = Exception.__hash__


class Denied(Error):
    """The policy does not grant this agent and skill the path; the text
    names the rule and how to change it. Returned whether or not the path
    exists."""

    kind = "denied"


class NotFound(Error):
    """No secret at that path (reported only when the policy grants it)."""

    kind = "not-found"


class InvalidPath(Error):
    """The path is malformed, too long, or names a mapping (the text lists
    the children the caller may read)."""

    kind = "invalid-path"


class Unavailable(Error):
    """The store could not answer (e.g. it could not be decrypted); a later
    run may succeed."""

    kind = "unavailable"


class Failure(Exception):
    """Raise in ``run`` to return an error: ``run``'s result is ``str(e)``.

    Any other exception is returned as ``TypeName: text`` and its traceback
    goes to stderr (which the host redacts and shows to the operator).
    """


_REDACTED = "Secret([REDACTED])"


class Secret:
    """A secret value released by the host.

    ``repr()``, ``str()``, ``format()`` and f-strings print
    ``Secret([REDACTED])``; ``json.dumps`` and ``pickle`` refuse it (it is not
    a ``str``, so no C fast path reads its text by accident). Use
    :meth:`expose` where the value is needed (a header, a connection string)
    and let it go.

    Python cannot zeroize a ``str``: the text lives in the component's memory
    until the host discards the instance at the end of the run. That is the
    Rust SDK's guarantee minus zeroization; the host's redaction of output
    holds either way.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value

    def expose(self) -> str:
        """The value. Use it where it is needed; do not return it or print
        it (the host would redact it anyway)."""
        return self._value

    def __len__(self) -> int:
        """Length in characters (``len(token)``)."""
        return len(self._value)

    def __bool__(self) -> bool:
        """Whether the value is not the empty string."""
        return bool(self._value)

    def __repr__(self) -> str:
        return _REDACTED

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return _REDACTED

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled or copied out of the run")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a Secret cannot be pickled or copied out of the run")

    def __copy__(self) -> "Secret":
        return self

    def __deepcopy__(self, memo: object) -> "Secret":
        return self


def _bindings():
    """The generated import ``agentsec:skill/secrets`` (only inside a
    component built by ``build.py``; tests put a fake in ``sys.modules``)."""
    from wit_world.imports import secrets

    return secrets


def _to_error(err: object) -> Error:
    """Maps a generated ``Error_*`` case to this package's exception."""
    secrets = _bindings()
    cases = (
        (secrets.Error_Denied, Denied),
        (secrets.Error_NotFound, NotFound),
        (secrets.Error_InvalidPath, InvalidPath),
        (secrets.Error_Unavailable, Unavailable),
    )
    for generated, ours in cases:
        if isinstance(err, generated):
            return ours(err.value)
    # A newer host with a case this SDK does not know: still an Error, and
    # still a message, never a value.
    return Unavailable(f"unknown error case from the host: {type(err).__name__}")


def get_secret(path: str) -> Secret:
    """Reads the secret at ``path`` (dotted, e.g.
    ``databases.postgres.production.password``, or the bracket form
    ``["a.b"]["c"]``).

    Raises :class:`Denied`, :class:`NotFound`, :class:`InvalidPath` or
    :class:`Unavailable` (all :class:`Error`); a denial is an ordinary
    exception the skill can handle.
    """
    from componentize_py_types import Err

    if not isinstance(path, str):
        raise TypeError(f"path must be a str, not {type(path).__name__}")
    try:
        value = _bindings().get_secret(path)
    except Err as e:
        raise _to_error(e.value) from None
    return Secret(value)


def list_secrets(prefix: str = "") -> List[str]:
    """The secret paths under ``prefix`` this skill may read (names, never
    values). ``""`` lists everything the skill may read."""
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    return list(_bindings().list_secrets(prefix))


def check_need(path: object) -> str:
    """Validates one declared need as the host will read it; returns it.

    Raises ``ValueError`` naming what is wrong (never a secret: needs are
    paths).
    """
    if not isinstance(path, str):
        raise ValueError(f"a declared need must be a str, not {type(path).__name__}")
    if not path.strip():
        raise ValueError("a declared need is empty")
    for i, ch in enumerate(path):
        if unicodedata.category(ch) == "Cc":
            raise ValueError(
                f"the declared need {path!r} holds a control character at index {i}"
            )
    return path


_declared: List[str] = []


def needs(*paths: str) -> None:
    """Declares the secrets this skill needs, so that ``agentsec-run`` can
    refuse to start it, naming the rule to add, when the policy does not grant
    them. Call it at module level with string literals::

        needs("communication.github.token", "databases.postgres.*.password")

    ``*`` is one whole segment ("one of these, chosen at run time"): such a
    need is satisfied when the policy grants at least one existing secret it
    matches; every other need must be granted to the agent for this skill. A
    declaration grants nothing: every ``get_secret`` call is still checked,
    and undeclared paths may still be requested.

    The build step reads these calls from the source (literals only, so the
    declaration is visible without running the skill) and writes them into
    the component's :data:`NEEDS_SECTION` section; at run time the call only
    validates its arguments.
    """
    for p in paths:
        _declared.append(check_need(p).strip())


_RunFn = Callable[[str], str]
_registered: Optional[_RunFn] = None


def skill(fn: _RunFn) -> _RunFn:
    """Marks ``fn(input: str) -> str`` as the skill's ``run`` export.

    ``input`` is the JSON text the caller passed to ``agentsec-run --input``.
    Return the output text; raise :class:`Failure` (or let an :class:`Error`
    propagate) to return an error. Use it once per skill; the function is
    returned unchanged, so it can be called directly in tests.
    """
    global _registered
    if not callable(fn):
        raise TypeError("@skill decorates a function run(input: str) -> str")
    if _registered is not None and _registered is not fn:
        raise RuntimeError(
            f"@skill used twice ({_name(_registered)} and {_name(fn)}); a skill has one run"
        )
    _registered = fn
    return fn


def _name(fn: Callable[..., object]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _outcome(fn: _RunFn, input: str) -> "tuple[bool, str]":
    """Calls ``fn`` and says how the run ended: ``(True, output)`` or
    ``(False, error text)``. Host-independent, so it is tested directly."""
    try:
        out = fn(input)
    except (Error, Failure) as e:
        return False, str(e)
    except Exception as e:  # noqa: BLE001 - every failure becomes run's Err
        traceback.print_exc(file=sys.stderr)
        return False, f"{type(e).__name__}: {e}"
    if not isinstance(out, str):
        return False, (
            f"run returned {type(out).__name__}, not str "
            "(return json.dumps(...) for JSON output)"
        )
    return True, out


def _run_export(input: str) -> str:
    """The body of the component's ``run`` export (called by the entry
    module ``build.py`` generates): the registered function's output, or
    ``componentize_py_types.Err(text)`` for run's ``err``."""
    from componentize_py_types import Err

    if _registered is None:
        raise Err("the skill registered no run function (decorate one with @agentsec_skill.skill)")
    ok, text = _outcome(_registered, input)
    if not ok:
        raise Err(text)
    return text


def _check_build(expected_needs: List[str]) -> None:
    """Called by the generated entry module when componentize-py pre-imports
    the skill at build time: a skill without ``@skill``, or whose ``needs``
    calls at import differ from what the build read in the source, fails the
    build instead of the run."""
    if _registered is None:
        raise RuntimeError("no function is decorated with @agentsec_skill.skill")
    if list(dict.fromkeys(_declared)) != list(dict.fromkeys(expected_needs)):
        raise RuntimeError(
            f"needs() at import declared {_declared!r}, the source declares "
            f"{expected_needs!r}; call needs() only in the skill's module (app.py), "
            "at module level, with string literals"
        )
