//! Plan → bytes with wac-graph: one instance per operation, per-operation identity imports, each
//! operation's interface re-exported as `op{i}-{slug}`, and the manifest appended as a custom
//! section.
//!
//! Facts about wac-graph this relies on: `instantiate` gives a fresh instance
//! per call; imports not passed explicitly become composition imports merged by name (one
//! `types` import, hence one `buffer` resource for all instances); an explicit import with a
//! plain label and an interface's instance type is encoded `(implements "…")`; `encode` with
//! `validate: true` is the real type check.

use wac_graph::{types::Package, CompositionGraph, EncodeOptions, NodeId, PackageId};
use wac_types::ItemKind;
use wasm_encoder::{ComponentSection, CustomSection};

use crate::error::ComposeError;
use crate::exports::catch;
use crate::manifest::MANIFEST_SECTION;
use crate::plan::CompositionPlan;
use crate::router::{operation_import, GRAPH_INTERFACE, OPERATORS_INTERFACE};

/// Encodes a plan into one validated component with the manifest embedded.
pub fn encode(plan: &CompositionPlan) -> Result<Vec<u8>, ComposeError> {
    let file = plan.file.clone();
    let wac_error = |operation: Option<&str>, e: &dyn std::fmt::Display| ComposeError::Composition {
        file: file.clone(),
        operation: operation.map(str::to_string),
        message: e.to_string(),
    };
    let chain = |e: &(dyn std::error::Error + 'static)| {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    };

    let result = catch(|| -> Result<Vec<u8>, ComposeError> {
        let mut g = CompositionGraph::new();
        let mut ids: Vec<PackageId> = Vec::with_capacity(plan.packages.len());
        // The first operation using each package, found in one pass (errors name it).
        let mut first_user: Vec<Option<&str>> = vec![None; plan.packages.len()];
        for inst in &plan.instances {
            if let Some(slot @ None) = first_user.get_mut(inst.package) {
                *slot = Some(inst.name.as_str());
            }
        }
        for (p, &op) in plan.packages.iter().zip(&first_user) {
            let package = Package::from_bytes(&p.name, None, p.bytes.clone(), g.types_mut())
                .map_err(|e| wac_error(op, &format!("{e:#}")))?;
            ids.push(g.register_package(package).map_err(|e| wac_error(op, &chain(&e)))?);
        }

        // Each operation's interface, for the dispatcher to import.
        let mut served: Vec<NodeId> = Vec::with_capacity(plan.instances.len());
        for inst in &plan.instances {
            let op = Some(inst.name.as_str());
            let pkg = ids[inst.package];
            let node: NodeId = g.instantiate(pkg);
            for import in &inst.per_operation_imports {
                let world = g[pkg].ty();
                let kind: ItemKind = *g.types()[world]
                    .imports
                    .get(&import.interface)
                    .ok_or_else(|| wac_error(op, &format!("its module has no import `{}`", import.interface)))?;
                let imported = g
                    .import(import.name.clone(), kind)
                    .map_err(|e| wac_error(op, &chain(&e)))?;
                g.set_instantiation_argument(node, &import.interface, imported)
                    .map_err(|e| wac_error(op, &chain(&e)))?;
            }
            let alias = g
                .alias_instance_export(node, &inst.interface)
                .map_err(|e| wac_error(op, &chain(&e)))?;
            g.export(alias, inst.export.clone())
                .map_err(|e| wac_error(op, &chain(&e)))?;
            served.push(alias);
        }

        if let Some(router) = &plan.router {
            // dispatcher(op{i} ← operation i) → router(operators ← dispatcher) → export graph.
            let package = |name: &str, bytes: &[u8], g: &mut CompositionGraph| {
                let p = Package::from_bytes(name, None, bytes.to_vec(), g.types_mut())
                    .map_err(|e| wac_error(None, &format!("{name}: {e:#}")))?;
                g.register_package(p).map_err(|e| wac_error(None, &chain(&e)))
            };
            let dispatcher = package("wasmflow-generated:dispatch", &router.dispatcher, &mut g)?;
            let d = g.instantiate(dispatcher);
            for (inst, &node) in plan.instances.iter().zip(&served) {
                if inst.kind.is_plumbing() {
                    continue;
                }
                g.set_instantiation_argument(d, &operation_import(inst.operation), node)
                    .map_err(|e| wac_error(Some(&inst.name), &chain(&e)))?;
            }
            let operators = g
                .alias_instance_export(d, OPERATORS_INTERFACE)
                .map_err(|e| wac_error(None, &chain(&e)))?;
            let routing = package("wasmflow-plumbing:router", &router.bytes, &mut g)?;
            let r = g.instantiate(routing);
            g.set_instantiation_argument(r, OPERATORS_INTERFACE, operators)
                .map_err(|e| wac_error(None, &chain(&e)))?;
            let graph = g
                .alias_instance_export(r, GRAPH_INTERFACE)
                .map_err(|e| wac_error(None, &chain(&e)))?;
            g.export(graph, GRAPH_INTERFACE.to_string())
                .map_err(|e| wac_error(None, &chain(&e)))?;
        }

        let mut bytes = g
            .encode(EncodeOptions::default())
            .map_err(|e| wac_error(None, &chain(&e)))?;
        let json = plan.manifest.to_json();
        CustomSection {
            name: MANIFEST_SECTION.into(),
            data: json.into(),
        }
        .append_to_component(&mut bytes);
        Ok(bytes)
    });
    match result {
        Ok(r) => r,
        Err(panic) => Err(ComposeError::Composition {
            file: plan.file.clone(),
            operation: None,
            message: panic,
        }),
    }
}
