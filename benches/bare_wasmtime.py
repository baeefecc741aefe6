"""Run an agentsec skill under plain wasmtime (its Python bindings), with a
stub `get-secret` that returns a constant: the same component without
agentsec (no policy, no audit, no SOPS, no redaction). Used by compare.sh.

usage: bare_wasmtime.py SKILL.wasm CACHE.cwasm [INPUT_JSON]
The compiled artifact is cached in CACHE.cwasm (like agentsec's own cache),
so a warm run measures load + instantiate + run, not compilation.
"""
import os
import sys

from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Linker


def main() -> int:
    skill, cache = sys.argv[1], sys.argv[2]
    payload = sys.argv[3] if len(sys.argv) > 3 else "{}"
    engine = Engine()
    if os.path.exists(cache):
        component = Component.deserialize_file(engine, cache)
    else:
        component = Component.from_file(engine, skill)
        with open(cache, "wb") as f:
            f.write(component.serialize())
    linker = Linker(engine)
    linker.add_wasip2()
    with linker.root() as root:
        with root.add_instance("agentsec:skill/secrets@0.1.0") as secrets:
            secrets.add_func("get-secret", lambda store, path: "ghp_STUB000000000000000000000000000000")
            secrets.add_func("list-secrets", lambda store, prefix: [])
    store = Store(engine)
    store.set_wasi(WasiConfig())
    instance = linker.instantiate(store, component)
    run = instance.get_func(store, "run")
    result = run(store, payload)
    run.post_return(store)
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
