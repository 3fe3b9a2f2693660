//! What instantiating a composed component takes of wasmtime's pooling allocator, read from its
//! bytes with wasmparser before anything is compiled.
//!
//! wasmtime checks a component against its pool when it loads it
//! (`PoolingInstanceAllocator::validate_component`): the core instances it creates, the memories
//! and tables they define, and the "component instance size", which is the component's
//! `VMComponentContext` **plus the `VMContext` of every core instance**. That last part is what a
//! componentize-py operator fills: CPython's function table makes most of its thousands of
//! functions escape, and wasmtime keeps a 32-byte function reference for each in the instance's
//! context (some 400 KiB per Python operator). [`Footprint::of_component`] walks the component the
//! way wasmtime flattens it (every instantiation of a nested component counts again) and adds up
//! the same quantities, with the field sizes of wasmtime 48 on a 64-bit host; the sizes are upper
//! bounds (each field at its largest, a fixed allowance for wasmtime's own headers), so a pool
//! sized from a footprint admits the component. The engine tests check that against wasmtime.
//!
//! Hand-written rather than taken from a crate: wasmtime computes these numbers only inside
//! `Component::new`, after compiling, and exposes none of them; the walk is the component
//! model's index spaces and nothing else.

use std::collections::BTreeSet;
use std::fmt;

use wasmparser::{
    CanonicalFunction, ComponentAlias, ComponentExternalKind, ComponentInstance, ComponentOuterAliasKind,
    ComponentTypeRef, ElementItems, Encoding, ExternalKind, Instance, Operator, Parser, Payload, TypeRef,
};

/// What one instance of a component needs from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    /// Core module instances, every nested instantiation counted.
    pub core_instances: u32,
    /// Linear memories those instances define.
    pub memories: u32,
    /// Tables those instances define.
    pub tables: u32,
    /// Bytes of the component's `VMComponentContext` and all its core instances' contexts
    /// (wasmtime's "component instance size"), an upper bound.
    pub component_instance_bytes: usize,
    /// Bytes of the largest single core instance context, an upper bound.
    pub largest_core_instance_bytes: usize,
    /// The most elements a defined table starts with.
    pub max_table_elements: u64,
    /// The most memories one core module defines.
    pub max_memories_per_module: u32,
    /// The most tables one core module defines.
    pub max_tables_per_module: u32,
}

impl fmt::Display for Footprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} core instances, {} memories, {} tables, {} KiB of instance state",
            self.core_instances,
            self.memories,
            self.tables,
            self.component_instance_bytes.div_ceil(1024)
        )
    }
}

/// Why a footprint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FootprintError {
    /// The bytes are not a valid component.
    #[error("the component cannot be read: {0}")]
    Parse(wasmparser::BinaryReaderError),
    /// The component instantiates a module or component it imports: its size is not in its bytes.
    #[error("the component instantiates an imported {0}, whose size is not in its bytes")]
    Imported(&'static str),
    /// An index points outside its index space (the binary is malformed).
    #[error("the component refers to {0} {1}, which it does not define")]
    BadIndex(&'static str, u32),
}

/// By hand, not `#[from]`: that would also make the parser's error the `source`, and it is
/// part of the message already (printed once).
impl From<wasmparser::BinaryReaderError> for FootprintError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        Self::Parse(e)
    }
}

// Field sizes of wasmtime 48's `VMContext` and `VMComponentContext` on a 64-bit host (see
// `wasmtime_environ::VMOffsets` and `VMComponentOffsets`), each rounded up.
/// `Instance` itself and the fixed part of a `VMContext`, with room to spare.
const CORE_HEADER: usize = 1024;
/// `VMFuncRef` and `VMFunctionImport`.
const FUNC_REF: usize = 32;
/// `VMMemoryImport`, `VMTableImport`, `VMGlobalImport`, `VMTagImport`.
const IMPORT: usize = 32;
/// `VMMemoryDefinition`, `VMTableDefinition`, `VMGlobalDefinition`, a tag, a data segment's
/// base and length.
const DEFINITION: usize = 16;
/// The fixed part of a `VMComponentContext`.
const COMPONENT_HEADER: usize = 256;
/// One canonical function: a trampoline's `VMFuncRef`, a `VMLowering`, and its options'
/// memory, realloc, callback and post-return pointers.
const CANON_FUNCTION: usize = FUNC_REF + 16 + 4 * 8;
/// One runtime component instance's flags (`VMGlobalDefinition`).
const COMPONENT_INSTANCE: usize = DEFINITION;

/// What a core module or a component definition costs each time it is instantiated.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    core_instances: u32,
    memories: u32,
    tables: u32,
    core_bytes: usize,
    canon_functions: usize,
    component_instances: u32,
    largest_core: usize,
    max_table_elements: u64,
    max_memories_per_module: u32,
    max_tables_per_module: u32,
}

impl Cost {
    fn add(&mut self, other: &Cost) {
        self.core_instances = self.core_instances.saturating_add(other.core_instances);
        self.memories = self.memories.saturating_add(other.memories);
        self.tables = self.tables.saturating_add(other.tables);
        self.core_bytes = self.core_bytes.saturating_add(other.core_bytes);
        self.canon_functions = self.canon_functions.saturating_add(other.canon_functions);
        self.component_instances = self.component_instances.saturating_add(other.component_instances);
        self.largest_core = self.largest_core.max(other.largest_core);
        self.max_table_elements = self.max_table_elements.max(other.max_table_elements);
        self.max_memories_per_module = self.max_memories_per_module.max(other.max_memories_per_module);
        self.max_tables_per_module = self.max_tables_per_module.max(other.max_tables_per_module);
    }
}

/// A core module being read: the counts its `VMContext` is made of.
#[derive(Debug, Default)]
struct ModuleScan {
    imported_funcs: usize,
    imported_other: usize,
    defined_memories: u32,
    defined_tables: u32,
    defined_globals: usize,
    defined_tags: usize,
    data_segments: usize,
    max_table_elements: u64,
    escaped: BTreeSet<u32>,
}

impl ModuleScan {
    /// The cost of one instantiation of the module.
    fn cost(&self) -> Cost {
        let bytes = CORE_HEADER
            + self.imported_funcs * FUNC_REF
            + self.imported_other * IMPORT
            + self.defined_memories as usize * (8 + DEFINITION)
            + (self.defined_tables as usize + self.defined_globals + self.defined_tags + self.data_segments)
                * DEFINITION
            // The escaped functions, and the start function's reference.
            + (self.escaped.len() + 1) * FUNC_REF;
        Cost {
            core_instances: 1,
            memories: self.defined_memories,
            tables: self.defined_tables,
            core_bytes: bytes,
            largest_core: bytes,
            max_table_elements: self.max_table_elements,
            max_memories_per_module: self.defined_memories,
            max_tables_per_module: self.defined_tables,
            ..Cost::default()
        }
    }

    /// Notes the functions a constant expression references (`ref.func`).
    fn scan_const(&mut self, expr: &wasmparser::ConstExpr<'_>) -> Result<(), FootprintError> {
        let mut reader = expr.get_operators_reader();
        while !reader.eof() {
            if let Operator::RefFunc { function_index } = reader.read()? {
                self.escaped.insert(function_index);
            }
        }
        Ok(())
    }
}

/// A component definition being read: its index spaces of modules and components (a `None` is
/// one whose size is unknown: imported, or an export of an instance) and what it instantiates.
#[derive(Debug, Default)]
struct ComponentScan {
    modules: Vec<Option<Cost>>,
    components: Vec<Option<Cost>>,
    total: Cost,
}

enum Frame {
    Module(ModuleScan),
    Component(ComponentScan),
}

impl Footprint {
    /// Reads the footprint of one instance of the component `bytes`.
    pub fn of_component(bytes: &[u8]) -> Result<Footprint, FootprintError> {
        let mut stack: Vec<Frame> = Vec::new();
        for payload in Parser::new(0).parse_all(bytes) {
            match payload? {
                Payload::Version { encoding, .. } => stack.push(match encoding {
                    Encoding::Module => Frame::Module(ModuleScan::default()),
                    Encoding::Component => Frame::Component(ComponentScan::default()),
                }),
                Payload::End(_) => {
                    let done = stack.pop();
                    let cost = match &done {
                        Some(Frame::Module(module)) => module.cost(),
                        Some(Frame::Component(component)) => component.total,
                        None => continue,
                    };
                    match (stack.last_mut(), done) {
                        (Some(Frame::Component(parent)), Some(Frame::Module(_))) => parent.modules.push(Some(cost)),
                        (Some(Frame::Component(parent)), Some(Frame::Component(_))) => {
                            parent.components.push(Some(cost))
                        }
                        (None, Some(Frame::Component(root))) => return Ok(Self::from_cost(&root.total)),
                        // A plain core module: what one instance of it takes.
                        (None, Some(Frame::Module(module))) => return Ok(Self::from_cost(&module.cost())),
                        _ => {}
                    }
                }
                payload => match stack.last_mut() {
                    Some(Frame::Module(module)) => scan_module_payload(module, payload)?,
                    Some(Frame::Component(_)) => scan_component_payload(&mut stack, payload)?,
                    None => {}
                },
            }
        }
        Ok(Footprint::default())
    }

    fn from_cost(cost: &Cost) -> Footprint {
        // The root counts as a runtime component instance too.
        let component_instances = cost.component_instances as usize + 1;
        let vmctx = COMPONENT_HEADER + component_instances * COMPONENT_INSTANCE + cost.canon_functions * CANON_FUNCTION;
        Footprint {
            core_instances: cost.core_instances,
            memories: cost.memories,
            tables: cost.tables,
            component_instance_bytes: vmctx.saturating_add(cost.core_bytes),
            largest_core_instance_bytes: cost.largest_core,
            max_table_elements: cost.max_table_elements,
            max_memories_per_module: cost.max_memories_per_module,
            max_tables_per_module: cost.max_tables_per_module,
        }
    }
}

fn scan_module_payload(module: &mut ModuleScan, payload: Payload<'_>) -> Result<(), FootprintError> {
    match payload {
        Payload::ImportSection(reader) => {
            for import in reader.into_imports() {
                match import?.ty {
                    TypeRef::Func(_) | TypeRef::FuncExact(_) => module.imported_funcs += 1,
                    _ => module.imported_other += 1,
                }
            }
        }
        Payload::TableSection(reader) => {
            for table in reader {
                let table = table?;
                module.defined_tables += 1;
                module.max_table_elements = module.max_table_elements.max(table.ty.initial);
                if let wasmparser::TableInit::Expr(expr) = &table.init {
                    module.scan_const(expr)?;
                }
            }
        }
        Payload::MemorySection(reader) => module.defined_memories += reader.count(),
        Payload::TagSection(reader) => module.defined_tags += reader.count() as usize,
        Payload::GlobalSection(reader) => {
            for global in reader {
                let global = global?;
                module.defined_globals += 1;
                module.scan_const(&global.init_expr)?;
            }
        }
        Payload::ExportSection(reader) => {
            for export in reader {
                let export = export?;
                if export.kind == ExternalKind::Func {
                    module.escaped.insert(export.index);
                }
            }
        }
        Payload::ElementSection(reader) => {
            for element in reader {
                match element?.items {
                    ElementItems::Functions(functions) => {
                        for f in functions {
                            module.escaped.insert(f?);
                        }
                    }
                    ElementItems::Expressions(_, exprs) => {
                        for expr in exprs {
                            module.scan_const(&expr?)?;
                        }
                    }
                }
            }
        }
        Payload::DataSection(reader) => module.data_segments += reader.count() as usize,
        _ => {}
    }
    Ok(())
}

fn scan_component_payload(stack: &mut [Frame], payload: Payload<'_>) -> Result<(), FootprintError> {
    let depth = stack.len();
    // An outer alias reads an enclosing component's index space.
    let outer = |stack: &[Frame], count: u32, index: u32, modules: bool| -> Result<Option<Cost>, FootprintError> {
        let what = if modules { "module" } else { "component" };
        let at = depth
            .checked_sub(1 + count as usize)
            .ok_or(FootprintError::BadIndex("an enclosing component of", count))?;
        match &stack[at] {
            Frame::Component(c) => {
                let space = if modules { &c.modules } else { &c.components };
                space
                    .get(index as usize)
                    .copied()
                    .ok_or(FootprintError::BadIndex(what, index))
            }
            Frame::Module(_) => Err(FootprintError::BadIndex(what, index)),
        }
    };
    let mut aliased: Vec<(bool, Option<Cost>)> = Vec::new();
    if let Payload::ComponentAliasSection(reader) = &payload {
        for alias in reader.clone() {
            match alias? {
                ComponentAlias::Outer {
                    kind: ComponentOuterAliasKind::CoreModule,
                    count,
                    index,
                } => aliased.push((true, outer(stack, count, index, true)?)),
                ComponentAlias::Outer {
                    kind: ComponentOuterAliasKind::Component,
                    count,
                    index,
                } => aliased.push((false, outer(stack, count, index, false)?)),
                ComponentAlias::InstanceExport {
                    kind: ComponentExternalKind::Module,
                    ..
                } => aliased.push((true, None)),
                ComponentAlias::InstanceExport {
                    kind: ComponentExternalKind::Component,
                    ..
                } => aliased.push((false, None)),
                _ => {}
            }
        }
    }
    let Some(Frame::Component(scan)) = stack.last_mut() else {
        return Ok(());
    };
    match payload {
        Payload::ComponentAliasSection(_) => {
            for (module, cost) in aliased {
                if module {
                    scan.modules.push(cost);
                } else {
                    scan.components.push(cost);
                }
            }
        }
        Payload::ComponentImportSection(reader) => {
            for import in reader {
                match import?.ty {
                    ComponentTypeRef::Module(_) => scan.modules.push(None),
                    ComponentTypeRef::Component(_) => scan.components.push(None),
                    _ => {}
                }
            }
        }
        Payload::ComponentExportSection(reader) => {
            // Exporting a module or a component adds it to its index space again.
            for export in reader {
                let export = export?;
                match export.kind {
                    ComponentExternalKind::Module => {
                        let cost = *scan
                            .modules
                            .get(export.index as usize)
                            .ok_or(FootprintError::BadIndex("module", export.index))?;
                        scan.modules.push(cost);
                    }
                    ComponentExternalKind::Component => {
                        let cost = *scan
                            .components
                            .get(export.index as usize)
                            .ok_or(FootprintError::BadIndex("component", export.index))?;
                        scan.components.push(cost);
                    }
                    _ => {}
                }
            }
        }
        Payload::InstanceSection(reader) => {
            for instance in reader {
                if let Instance::Instantiate { module_index, .. } = instance? {
                    let cost = scan
                        .modules
                        .get(module_index as usize)
                        .ok_or(FootprintError::BadIndex("module", module_index))?
                        .ok_or(FootprintError::Imported("module"))?;
                    scan.total.add(&cost);
                }
            }
        }
        Payload::ComponentInstanceSection(reader) => {
            for instance in reader {
                if let ComponentInstance::Instantiate { component_index, .. } = instance? {
                    let mut cost = scan
                        .components
                        .get(component_index as usize)
                        .ok_or(FootprintError::BadIndex("component", component_index))?
                        .ok_or(FootprintError::Imported("component"))?;
                    cost.component_instances = cost.component_instances.saturating_add(1);
                    scan.total.add(&cost);
                }
            }
        }
        Payload::ComponentCanonicalSection(reader) => {
            for function in reader {
                // Every kind becomes a trampoline, a lowering or a lifted export's options.
                let _: CanonicalFunction = function?;
                scan.total.canon_functions += 1;
            }
        }
        _ => {}
    }
    Ok(())
}
