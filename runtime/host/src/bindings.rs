//! The one place where bindings are generated from `wit/`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "skill",
    // Every secrets import may trap: a lost audit record or an exhausted
    // limit must stop the skill, not be reported to it as an error.
    imports: { default: trappable },
});
