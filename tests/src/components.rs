//! Components generated for the tests (with `wasm-encoder`), for shapes no
//! toolchain makes on purpose: many memories, many functions. Each is a real
//! component of the `agentsec:skill` world: it exports
//! `run: func(input: string) -> result<string, string>` and returns `ok("ok")`.

use wasm_encoder::{
    Alias, CanonicalFunctionSection, CanonicalOption, CodeSection, Component,
    ComponentAliasSection, ComponentExportKind, ComponentExportSection, ComponentImportSection,
    ComponentTypeRef, ComponentTypeSection, ComponentValType, ConstExpr, DataSection, ExportKind,
    ExportSection, Function, FunctionSection, InstanceSection, InstanceType, MemorySection,
    MemoryType, Module, ModuleArg, ModuleSection, PrimitiveValType, TypeSection, ValType,
};

/// A component whose core module has, besides its one-page main memory,
/// `extra_memories` memories of `pages` 64 KiB pages each, and `functions`
/// extra (empty) functions.
pub fn generated_skill(extra_memories: u32, pages: u64, functions: u32) -> Vec<u8> {
    skill_with_imports(extra_memories, pages, functions, &[])
}

/// The smallest generated skill, also importing an instance named `import` (with one
/// function), as a
/// component built for a host with other interfaces (e.g. `wasi:http/outgoing-handler@0.2.0`)
/// would.
pub fn generated_skill_importing(import: &str) -> Vec<u8> {
    skill_with_imports(0, 0, 0, &[import])
}

fn skill_with_imports(
    extra_memories: u32,
    pages: u64,
    functions: u32,
    imports: &[&str],
) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32; 4], [ValType::I32]); // 0: cabi_realloc
    types.ty().function([ValType::I32; 2], [ValType::I32]); // 1: run
    types.ty().function([], []); // 2: filler
    let mut funcs = FunctionSection::new();
    funcs.function(0).function(1);
    for _ in 0..functions {
        funcs.function(2);
    }
    let mut memories = MemorySection::new();
    let memory = |minimum| MemoryType {
        minimum,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    };
    memories.memory(memory(1));
    for _ in 0..extra_memories {
        memories.memory(memory(pages));
    }
    let mut exports = ExportSection::new();
    exports
        .export("memory", ExportKind::Memory, 0)
        .export("cabi_realloc", ExportKind::Func, 0)
        .export("run", ExportKind::Func, 1);
    let mut code = CodeSection::new();
    // cabi_realloc: the input lands at 1024 (the tests pass a few bytes).
    let mut realloc = Function::new([]);
    realloc.instructions().i32_const(1024).end();
    code.function(&realloc);
    // run: ok("ok"), laid out at 16 by the data segment below.
    let mut run = Function::new([]);
    run.instructions().i32_const(16).end();
    code.function(&run);
    let mut filler = Function::new([]);
    filler.instructions().end();
    for _ in 0..functions {
        code.function(&filler);
    }
    let mut data = DataSection::new();
    let mut ret = vec![0u8, 0, 0, 0, 32, 0, 0, 0, 2, 0, 0, 0];
    ret.resize(16, 0);
    ret.extend_from_slice(b"ok");
    data.active(0, &ConstExpr::i32_const(16), ret);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&funcs)
        .section(&memories)
        .section(&exports)
        .section(&code)
        .section(&data);

    let mut component = Component::new();
    // Imported instances come first and take the first type indices.
    let mut import_types = ComponentTypeSection::new();
    let mut import_section = ComponentImportSection::new();
    for (i, name) in imports.iter().enumerate() {
        // An instance exporting one function, `handle: func()`, as a real interface would.
        let mut instance = InstanceType::new();
        instance
            .ty()
            .function()
            .params(std::iter::empty::<(&str, ComponentValType)>())
            .result(None);
        instance.export("handle", ComponentTypeRef::Func(0));
        import_types.instance(&instance);
        import_section.import(*name, ComponentTypeRef::Instance(i as u32));
    }
    if !imports.is_empty() {
        component.section(&import_types);
        component.section(&import_section);
    }
    let first_type = imports.len() as u32;
    component.section(&ModuleSection(&module));
    let mut instances = InstanceSection::new();
    instances.instantiate(0, Vec::<(&str, ModuleArg)>::new());
    component.section(&instances);
    let mut aliases = ComponentAliasSection::new();
    for (kind, name) in [
        (ExportKind::Func, "run"),
        (ExportKind::Memory, "memory"),
        (ExportKind::Func, "cabi_realloc"),
    ] {
        aliases.alias(Alias::CoreInstanceExport {
            instance: 0,
            kind,
            name,
        });
    }
    component.section(&aliases);
    let string = ComponentValType::Primitive(PrimitiveValType::String);
    let mut ctypes = ComponentTypeSection::new();
    ctypes.defined_type().result(Some(string), Some(string));
    ctypes
        .function()
        .params([("input", string)])
        .result(Some(ComponentValType::Type(first_type)));
    component.section(&ctypes);
    let mut canon = CanonicalFunctionSection::new();
    canon.lift(
        0,
        first_type + 1,
        [
            CanonicalOption::UTF8,
            CanonicalOption::Memory(0),
            CanonicalOption::Realloc(1),
        ],
    );
    component.section(&canon);
    let mut cexports = ComponentExportSection::new();
    cexports.export("run", ComponentExportKind::Func, 0, None);
    component.section(&cexports);
    component.finish()
}
