"""The guest-side API: Secret never shows its value, errors are typed and
read as sentences, @skill turns exceptions into run's error."""

import copy
import json
import logging
import pickle

import pytest

import agentsec_skill as sk
from conftest import Err

PLANTED = "ghp_planted-hunter2-value"


def test_secret_never_shows_its_value():
    s = sk.Secret(PLANTED)
    shown = [repr(s), str(s), f"{s}", f"{s!r}", f"{s:>40}", "%s" % s, "{}".format(s), repr([s]),
             repr({"t": s}), str((s,))]
    for text in shown:
        assert PLANTED not in text
        assert "REDACTED" in text
    assert repr(s) == "Secret([REDACTED])"
    assert s.expose() == PLANTED
    assert len(s) == len(PLANTED) and s
    assert not sk.Secret("")


def test_secret_refuses_serialisation():
    s = sk.Secret(PLANTED)
    with pytest.raises(TypeError) as e:
        json.dumps({"token": s})
    assert PLANTED not in str(e.value)
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert copy.copy(s) is s and copy.deepcopy([s])[0] is s
    with pytest.raises(TypeError):
        vars(s)  # no __dict__ to dump
    with pytest.raises(TypeError):
        sk.Secret(b"bytes")  # type: ignore[arg-type]


def test_secret_in_a_log_line_and_a_traceback_is_redacted(caplog):
    s = sk.Secret(PLANTED)
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("token %s %r", s, s)
    assert PLANTED not in caplog.text
    import traceback

    def boom(token):
        raise ValueError("bad")

    try:
        boom(s)
    except ValueError as e:
        tb = "".join(traceback.TracebackException.from_exception(e, capture_locals=True).format())
    assert PLANTED not in tb and "Secret([REDACTED])" in tb


def test_get_secret_returns_a_secret(host):
    host.store["communication.github.token"] = PLANTED
    host.granted.add("communication.github.token")
    s = sk.get_secret("communication.github.token")
    assert isinstance(s, sk.Secret) and s.expose() == PLANTED


@pytest.mark.parametrize(
    "setup, path, cls, kind",
    [
        (lambda h: None, "communication.github.token", sk.Denied, "denied"),
        (lambda h: h.granted.add("a.b"), "a.b", sk.NotFound, "not-found"),
        (lambda h: None, "a..b", sk.InvalidPath, "invalid-path"),
        (lambda h: setattr(h, "down", True), "a.b", sk.Unavailable, "unavailable"),
    ],
)
def test_each_wit_case_is_its_own_exception(host, setup, path, cls, kind):
    setup(host)
    with pytest.raises(cls) as e:
        sk.get_secret(path)
    assert isinstance(e.value, sk.Error)
    assert e.value.kind == kind
    assert str(e.value) == f"{kind}: {e.value.message}"
    assert e.value.__cause__ is None and e.value.__suppress_context__  # no generated Err chained


def test_an_unknown_case_is_still_an_error(host):
    class Error_Future:
        value = "x"

    host.get_secret = lambda p: (_ for _ in ()).throw(Err(Error_Future()))
    with pytest.raises(sk.Unavailable, match="Error_Future"):
        sk.get_secret("a")


def test_list_secrets(host):
    host.store.update({"a.b": "1", "a.c": "2", "d.e": "3"})
    host.granted.update({"a.b", "d.e"})
    assert sk.list_secrets("a") == ["a.b"]
    assert sk.list_secrets() == ["a.b", "d.e"]
    with pytest.raises(TypeError):
        sk.list_secrets(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sk.get_secret(1)  # type: ignore[arg-type]


def test_errors_compare_and_print():
    assert sk.Denied("r") == sk.Denied("r") != sk.NotFound("r")
    assert repr(sk.InvalidPath("`a..b`")) == "InvalidPath('`a..b`')"


def test_needs_validates_like_the_host(host):
    sk.needs("a.b", " c.*.d ")
    assert sk._declared == ["a.b", "c.*.d"]
    for bad in ["", "  ", "a\nb", "a\x07", "a\x85b", 3]:
        with pytest.raises(ValueError):
            sk.needs(bad)  # type: ignore[arg-type]


def test_run_outcomes(host):
    host.granted.add("t")

    @sk.skill
    def run(input):
        if input == "fail":
            raise sk.Failure("input is not JSON: x")
        if input == "crash":
            raise KeyError("k")
        if input == "dict":
            return {"a": 1}
        return "out:" + sk.get_secret("t").expose()

    host.store["t"] = "v"
    assert sk._run_export("x") == "out:v"
    for inp, text in [
        ("fail", "input is not JSON: x"),
        ("crash", "KeyError: 'k'"),
        ("dict", "run returned dict, not str (return json.dumps(...) for JSON output)"),
    ]:
        with pytest.raises(Err) as e:
            sk._run_export(inp)
        assert e.value.value == text
    del host.store["t"]
    with pytest.raises(Err) as e:
        sk._run_export("x")
    assert e.value.value == "not-found: no secret `t`"  # like Rust's `?`


def test_skill_is_registered_once(host):
    with pytest.raises(Err, match="registered no run"):
        sk._run_export("")
    with pytest.raises(RuntimeError, match="no function"):
        sk._check_build([])

    def one(i):
        return i

    def two(i):
        return i

    assert sk.skill(one) is one
    assert sk.skill(one) is one
    with pytest.raises(RuntimeError, match="twice"):
        sk.skill(two)
    with pytest.raises(TypeError):
        sk.skill(3)  # type: ignore[arg-type]


def test_build_check_compares_needs(host):
    sk.skill(lambda i: i)
    sk.needs("a.b")
    sk._check_build(["a.b"])
    with pytest.raises(RuntimeError, match="string literals"):
        sk._check_build(["a.b", "c"])
