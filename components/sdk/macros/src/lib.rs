//! The operator attribute macros of [`wasm_graph_sdk`](../wasm_graph_sdk/index.html).
//!
//! Use them through `wasm_graph_sdk::macros`, never from this crate directly: the expansion
//! names `::wasm_graph_sdk`, so the operator crate must depend on the SDK under that name.
//!
//! Each macro marks the function that implements `process` of one operator interface of
//! `wasm-graph:processor@1.1.0` and expands, beside the unchanged function:
//!
//! * `use ::wasm_graph_sdk::prelude::*;` in the function's module, so the operator names the
//!   data-model types (`DataModel`, `Message`, `BufferOrBytes`, `ModuleConfiguration`, `Error`,
//!   `HybridLogicalClock`, `Duration`, …) without importing them (a glob import: the module's own
//!   items and explicit imports take precedence);
//! * two hidden functions that call the operator's functions through checked function pointers
//!   (a function of the wrong signature fails there, with an error that names the operator kind
//!   and the expected signature);
//! * a hidden module with the guest bindings of the kind's world (`map-impl`, `filter-impl`,
//!   `branch-impl`, `accumulate-impl`, `delay-impl`, from `wit/processor`), whose imports are the
//!   SDK's own bindings (one set of types for every operator of a crate), and the export of the
//!   interface.
//!
//! A crate may hold one operator of each kind (the platform's `temperature` module exports
//! `map`, `branch`, `filter` and `accumulate` from one component); two operators of the same
//! kind in one crate would export the same functions twice.
//!
//! | macro | the marked function |
//! |---|---|
//! | `#[map_operator]` | `fn(DataModel) -> Result<DataModel, Error>` |
//! | `#[filter_operator]` | `fn(DataModel) -> Result<bool, Error>` |
//! | `#[branch_operator]` | `fn(HybridLogicalClock, DataModel) -> Result<bool, Error>` |
//! | `#[accumulate_operator]` | `fn(DataModel, Vec<DataModel>) -> Result<DataModel, Error>` |
//! | `#[delay_operator]` | `fn(DataModel, HybridLogicalClock) -> Result<HybridLogicalClock, Error>` |
//!
//! Every macro takes one optional argument, `init = "function_name"`: a
//! `fn(ModuleConfiguration) -> bool` called once when the module is instantiated for an
//! operation (`false` refuses the configuration). Without it, `init` accepts any configuration.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, Path, ReturnType};

/// The WIT package the expansion generates bindings from: the files of `wit/processor` of this
/// repository, embedded when this crate is compiled. Embedded rather than named by path: an
/// operator is built anywhere (a temporary directory, another checkout), and a compiled macro
/// found in a build cache shared between checkouts must not point into a checkout that may be
/// gone.
const WIT_FILES: [&str; 4] = [
    include_str!("../../../../wit/processor/types.wit"),
    include_str!("../../../../wit/processor/hybrid-logical-clock.wit"),
    include_str!("../../../../wit/processor/host.wit"),
    include_str!("../../../../wit/processor/operators.wit"),
];

/// The five operator kinds of `wasm-graph:processor@1.1.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Map,
    Filter,
    Branch,
    Accumulate,
    Delay,
}

impl Kind {
    /// The interface name (`map`), also the Rust module of its export in the bindings.
    fn name(self) -> &'static str {
        match self {
            Kind::Map => "map",
            Kind::Filter => "filter",
            Kind::Branch => "branch",
            Kind::Accumulate => "accumulate",
            Kind::Delay => "delay",
        }
    }

    /// The attribute as the user writes it.
    fn attribute(self) -> String {
        format!("#[{}_operator]", self.name())
    }

    /// The world whose export the expansion implements.
    fn world(self) -> String {
        format!("{}-impl", self.name())
    }

    /// The expected signature, as the error messages show it.
    fn signature(self) -> &'static str {
        match self {
            Kind::Map => "fn(DataModel) -> Result<DataModel, Error>",
            Kind::Filter => "fn(DataModel) -> Result<bool, Error>",
            Kind::Branch => "fn(HybridLogicalClock, DataModel) -> Result<bool, Error>",
            Kind::Accumulate => "fn(DataModel, Vec<DataModel>) -> Result<DataModel, Error>",
            Kind::Delay => "fn(DataModel, HybridLogicalClock) -> Result<HybridLogicalClock, Error>",
        }
    }

    /// The number of parameters of `process`.
    fn arity(self) -> usize {
        match self {
            Kind::Map | Kind::Filter => 1,
            Kind::Branch | Kind::Accumulate | Kind::Delay => 2,
        }
    }

    /// The prefix of the SDK's hidden signature traits (`MapProcess`, `MapInit`).
    fn trait_prefix(self) -> &'static str {
        match self {
            Kind::Map => "Map",
            Kind::Filter => "Filter",
            Kind::Branch => "Branch",
            Kind::Accumulate => "Accumulate",
            Kind::Delay => "Delay",
        }
    }

    /// The parameters and result of the generated `Guest::process` (the WIT names).
    fn process_signature(self) -> (Vec<(Ident, TokenStream2)>, TokenStream2) {
        let dm = quote!(::wasm_graph_sdk::DataModel);
        let hlc = quote!(::wasm_graph_sdk::HybridLogicalClock);
        let err = quote!(::wasm_graph_sdk::Error);
        // Mixed-site hygiene: the parameters never capture a user's item of the same name (a
        // marked function called `message` stays the function inside the glue).
        let p = |name: &str, ty: TokenStream2| (Ident::new(name, Span::mixed_site()), ty);
        match self {
            Kind::Map => (
                vec![p("message", dm.clone())],
                quote!(::core::result::Result<#dm, #err>),
            ),
            Kind::Filter => (vec![p("message", dm)], quote!(::core::result::Result<bool, #err>)),
            Kind::Branch => (
                vec![p("timestamp", hlc), p("message", dm)],
                quote!(::core::result::Result<bool, #err>),
            ),
            Kind::Accumulate => (
                vec![p("staged", dm.clone()), p("message", quote!(::std::vec::Vec<#dm>))],
                quote!(::core::result::Result<#dm, #err>),
            ),
            Kind::Delay => (
                vec![p("data", dm), p("timestamp", hlc.clone())],
                quote!(::core::result::Result<#hlc, #err>),
            ),
        }
    }
}

/// The operator-kind message every signature error starts with.
fn expected(kind: Kind) -> String {
    format!(
        "{} must be used on a function `{}` (the {} operator's `process`)",
        kind.attribute(),
        kind.signature(),
        kind.name()
    )
}

/// Parses the attribute's arguments: nothing, or `init = "function_name"` (a bare path is
/// accepted too: `init = function_name`).
fn parse_args(kind: Kind, attr: TokenStream2) -> syn::Result<Option<Path>> {
    let mut init: Option<Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("init") {
            if init.is_some() {
                return Err(meta.error(format!("{}: `init` is given twice", kind.attribute())));
            }
            let value = meta.value()?;
            let path = if value.peek(LitStr) {
                let lit: LitStr = value.parse()?;
                lit.parse::<Path>().map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        format!(
                            "{}: `init` must name a function `fn(ModuleConfiguration) -> bool`, e.g. `init = \"my_init\"`",
                            kind.attribute()
                        ),
                    )
                })?
            } else {
                value.parse::<Path>()?
            };
            init = Some(path);
            Ok(())
        } else {
            Err(meta.error(format!(
                "unknown argument of {}: the only argument is `init = \"function_name\"` \
                 (a `fn(ModuleConfiguration) -> bool` called once when the module is loaded)",
                kind.attribute()
            )))
        }
    });
    parser.parse2(attr)?;
    Ok(init)
}

/// The shape checks that need no types: the function must be a plain, synchronous, safe,
/// non-generic free function with the kind's number of parameters and a result. Whether the
/// parameter and result types are right is checked by the compiler in the expansion (through
/// the SDK's signature traits), so type aliases and qualified paths work.
fn check_shape(kind: Kind, func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors: Vec<syn::Error> = Vec::new();
    let mut fail = |span: Span, what: &str| {
        errors.push(syn::Error::new(span, format!("{}; {what}", expected(kind))));
    };
    if let Some(t) = &sig.asyncness {
        fail(t.span(), "it cannot be `async`");
    }
    if let Some(t) = &sig.unsafety {
        fail(t.span(), "it cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        fail(abi.span(), "it cannot have an `extern` ABI");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        fail(sig.generics.span(), "it cannot be generic");
    }
    if let Some(v) = &sig.variadic {
        fail(v.span(), "it cannot be variadic");
    }
    if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
        fail(r.span(), "it must be a free function, not a method");
    } else if sig.inputs.len() != kind.arity() {
        let plural = |n: usize| if n == 1 { "parameter" } else { "parameters" };
        let span = if sig.inputs.is_empty() {
            sig.ident.span()
        } else {
            sig.inputs.span()
        };
        fail(
            span,
            &format!(
                "it takes {} {} where `process` takes {} {}",
                sig.inputs.len(),
                plural(sig.inputs.len()),
                kind.arity(),
                plural(kind.arity())
            ),
        );
    }
    if let ReturnType::Default = sig.output {
        fail(sig.ident.span(), "it returns nothing");
    }
    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(()),
        Some(mut first) => {
            errors.for_each(|e| first.combine(e));
            Err(first)
        }
    }
}

/// The WIT directory as an absolute path (canonical when it exists).
/// [`WIT_FILES`] as one document for `generate!`'s `inline`: their `package` line once.
fn wit_inline() -> String {
    let mut doc = String::from("package wasm-graph:processor@1.1.0;\n");
    for line in WIT_FILES.iter().flat_map(|f| f.lines()) {
        if !line.trim_start().starts_with("package ") {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    doc
}

/// The expansion, on `proc_macro2` streams so that it can be unit-tested.
fn expand(kind: Kind, attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let prelude = quote! {
        #[allow(unused_imports)]
        use ::wasm_graph_sdk::prelude::*;
    };
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let err = syn::Error::new(
                item.clone()
                    .into_iter()
                    .next()
                    .map_or_else(Span::call_site, |t| t.span()),
                format!("{}; it is not on a function", expected(kind)),
            )
            .to_compile_error();
            return quote!(#err #item);
        }
    };
    let init = match parse_args(kind, attr) {
        Ok(init) => init,
        Err(e) => {
            let err = e.to_compile_error();
            return quote!(#err #prelude #func);
        }
    };
    if let Err(e) = check_shape(kind, &func) {
        let err = e.to_compile_error();
        return quote!(#err #prelude #func);
    }

    let name = kind.name();
    let fn_name = &func.sig.ident;
    let world = kind.world();
    let wit = wit_inline();
    let iface = Ident::new(name, Span::call_site());
    let process_trait = format_ident!("{}Process", kind.trait_prefix());
    let init_trait = format_ident!("{}Init", kind.trait_prefix());
    let process_helper = format_ident!("__wasm_graph_sdk_{}_process", name);
    let init_helper = format_ident!("__wasm_graph_sdk_{}_init", name);
    let export_mod = format_ident!("__wasm_graph_sdk_{}_export", name);
    let (params, ret) = kind.process_signature();
    let names: Vec<&Ident> = params.iter().map(|(n, _)| n).collect();
    let types: Vec<&TokenStream2> = params.iter().map(|(_, t)| t).collect();
    let to_pointer = format_ident!("fn_pointer{}", kind.arity());

    // The marked function is first coerced to the function pointer of its own signature (a
    // coercion, so the compiler takes the types from the function alone), then called through
    // the kind's trait, which the SDK implements only for the exact signature of `process`;
    // its `on_unimplemented` message names the operator kind and the expected signature.
    // Spanned at the function's name (at the `init` string), so the error points there.
    let span = fn_name.span();
    // The local binding carries the function name's span, which is where the compiler reports
    // the unsatisfied trait (a mixed-site span would be reported at the attribute); its name
    // keeps it from shadowing anything the user could name.
    let local = Ident::new("__wasm_graph_sdk_process", span);
    let process_call = quote_spanned! {span=>
        let #local = ::wasm_graph_sdk::__private::#to_pointer(#fn_name);
        ::wasm_graph_sdk::__private::#process_trait::call(#local, #(#names),*)
    };
    let configuration = Ident::new("configuration", Span::mixed_site());
    let init_call = match &init {
        Some(path) => {
            let span = path.span();
            let local = Ident::new("__wasm_graph_sdk_init", span);
            quote_spanned! {span=>
                let #local = ::wasm_graph_sdk::__private::fn_pointer1(#path);
                ::wasm_graph_sdk::__private::#init_trait::call(#local, #configuration)
            }
        }
        None => quote! {
            let _ = #configuration;
            true
        },
    };

    quote! {
        #func

        #prelude

        #[doc(hidden)]
        #[allow(non_snake_case, dead_code, clippy::all)]
        fn #init_helper(#configuration: ::wasm_graph_sdk::ModuleConfiguration) -> bool {
            #init_call
        }

        #[doc(hidden)]
        #[allow(non_snake_case, dead_code, clippy::all)]
        fn #process_helper(#(#names: #types),*) -> #ret {
            #process_call
        }

        #[doc(hidden)]
        #[allow(non_snake_case, dead_code, unused, unsafe_op_in_unsafe_fn, missing_docs, clippy::all)]
        mod #export_mod {
            ::wasm_graph_sdk::__private::wit_bindgen::generate!({
                world: #world,
                inline: #wit,
                runtime_path: "::wasm_graph_sdk::__private::wit_bindgen::rt",
                with: {
                    "wasm-graph:processor/types@1.1.0": ::wasm_graph_sdk::__private::wit::types,
                    "wasm-graph:processor/hybrid-logical-clock@1.1.0": ::wasm_graph_sdk::__private::wit::hybrid_logical_clock,
                    "wasm-graph:processor/state-store-types@1.1.0": ::wasm_graph_sdk::__private::wit::state_store_types,
                    "wasm-graph:processor/state-store@1.1.0": ::wasm_graph_sdk::__private::wit::state_store,
                    "wasm-graph:processor/logger@1.1.0": ::wasm_graph_sdk::__private::wit::logger,
                    "wasm-graph:processor/metrics@1.1.0": ::wasm_graph_sdk::__private::wit::metrics,
                },
            });

            struct Operator;

            impl exports::wasm_graph::processor::#iface::Guest for Operator {
                fn init(#configuration: ::wasm_graph_sdk::ModuleConfiguration) -> bool {
                    super::#init_helper(#configuration)
                }

                fn process(#(#names: #types),*) -> #ret {
                    super::#process_helper(#(#names),*)
                }
            }

            export!(Operator);
        }
    }
}

/// Marks the `process` function of a **map** operator (`wasm-graph:processor/map`): one item
/// in, one item out.
///
/// The function must be `fn(DataModel) -> Result<DataModel, Error>`; `init = "fn_name"` names an
/// optional `fn(ModuleConfiguration) -> bool`.
///
/// ```ignore
/// use wasm_graph_sdk::macros::map_operator;
///
/// #[map_operator(init = "my_init")]
/// fn to_upper(input: DataModel) -> Result<DataModel, Error> {
///     let DataModel::Message(mut message) = input else {
///         return Err(Error { message: "expected a message".into() });
///     };
///     message.payload = BufferOrBytes::Bytes(message.payload.read().to_ascii_uppercase());
///     Ok(DataModel::Message(message))
/// }
///
/// fn my_init(_configuration: ModuleConfiguration) -> bool {
///     true
/// }
/// ```
#[proc_macro_attribute]
pub fn map_operator(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Map, attr.into(), item.into()).into()
}

/// Marks the `process` function of a **filter** operator (`wasm-graph:processor/filter`):
/// `Ok(true)` passes the item on, `Ok(false)` drops it.
///
/// The function must be `fn(DataModel) -> Result<bool, Error>`; `init = "fn_name"` names an
/// optional `fn(ModuleConfiguration) -> bool`.
#[proc_macro_attribute]
pub fn filter_operator(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Filter, attr.into(), item.into()).into()
}

/// Marks the `process` function of a **branch** operator (`wasm-graph:processor/branch`):
/// `Ok(false)` routes the item to the first arm (`"False"`), `Ok(true)` to the second (`"True"`).
///
/// The function must be `fn(HybridLogicalClock, DataModel) -> Result<bool, Error>` (the item's
/// timestamp first); `init = "fn_name"` names an optional `fn(ModuleConfiguration) -> bool`.
#[proc_macro_attribute]
pub fn branch_operator(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Branch, attr.into(), item.into()).into()
}

/// Marks the `process` function of an **accumulate** operator
/// (`wasm-graph:processor/accumulate`): folds a batch of items into the staged value and returns
/// the new staged value.
///
/// The function must be `fn(DataModel, Vec<DataModel>) -> Result<DataModel, Error>` (staged value,
/// then the batch); `init = "fn_name"` names an optional `fn(ModuleConfiguration) -> bool`.
#[proc_macro_attribute]
pub fn accumulate_operator(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Accumulate, attr.into(), item.into()).into()
}

/// Marks the `process` function of a **delay** operator (`wasm-graph:processor/delay`): returns
/// the item's new, later timestamp.
///
/// The function must be `fn(DataModel, HybridLogicalClock) -> Result<HybridLogicalClock, Error>`
/// (the item, then its current timestamp); `init = "fn_name"` names an optional
/// `fn(ModuleConfiguration) -> bool`.
#[proc_macro_attribute]
pub fn delay_operator(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Delay, attr.into(), item.into()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(kind: Kind, attr: TokenStream2, item: TokenStream2) -> String {
        expand(kind, attr, item).to_string()
    }

    #[test]
    fn a_good_map_operator_expands_its_world_and_helpers() {
        let out = expand_str(
            Kind::Map,
            quote!(init = "my_init"),
            quote!(
                fn f(input: DataModel) -> Result<DataModel, Error> {
                    Ok(input)
                }
            ),
        );
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("\"map-impl\""), "{out}");
        assert!(out.contains("fn_pointer1 (f)"), "{out}");
        assert!(
            out.contains("MapProcess :: call (__wasm_graph_sdk_process , message)"),
            "{out}"
        );
        assert!(out.contains("fn_pointer1 (my_init)"), "{out}");
        assert!(
            out.contains("MapInit :: call (__wasm_graph_sdk_init , configuration)"),
            "{out}"
        );
        assert!(out.contains("use :: wasm_graph_sdk :: prelude :: *"), "{out}");
    }

    #[test]
    fn every_kind_names_its_world_and_arity() {
        for (kind, item) in [
            (
                Kind::Filter,
                quote!(
                    fn f(i: DataModel) -> Result<bool, Error> {
                        Ok(true)
                    }
                ),
            ),
            (
                Kind::Branch,
                quote!(
                    fn f(t: HybridLogicalClock, i: DataModel) -> Result<bool, Error> {
                        Ok(true)
                    }
                ),
            ),
            (
                Kind::Accumulate,
                quote!(
                    fn f(s: DataModel, i: Vec<DataModel>) -> Result<DataModel, Error> {
                        Ok(s)
                    }
                ),
            ),
            (
                Kind::Delay,
                quote!(
                    fn f(i: DataModel, t: HybridLogicalClock) -> Result<HybridLogicalClock, Error> {
                        Ok(t)
                    }
                ),
            ),
        ] {
            let out = expand_str(kind, TokenStream2::new(), item);
            assert!(!out.contains("compile_error"), "{kind:?}: {out}");
            assert!(out.contains(&format!("\"{}-impl\"", kind.name())), "{kind:?}: {out}");
        }
    }

    #[test]
    fn a_wrong_arity_names_the_kind_and_the_signature() {
        let out = expand_str(
            Kind::Branch,
            TokenStream2::new(),
            quote!(
                fn f(input: DataModel) -> Result<bool, Error> {
                    Ok(true)
                }
            ),
        );
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("#[branch_operator] must be used on a function"), "{out}");
        assert!(
            out.contains("fn(HybridLogicalClock, DataModel) -> Result<bool, Error>"),
            "{out}"
        );
        assert!(
            out.contains("it takes 1 parameter where `process` takes 2 parameters"),
            "{out}"
        );
        // The function itself is kept, so its body does not add errors of its own.
        assert!(out.contains("fn f"), "{out}");
    }

    #[test]
    fn async_unsafe_generic_and_missing_result_are_refused() {
        for (item, what) in [
            (
                quote!(
                    async fn f(i: DataModel) -> Result<DataModel, Error> {
                        Ok(i)
                    }
                ),
                "cannot be `async`",
            ),
            (
                quote!(
                    unsafe fn f(i: DataModel) -> Result<DataModel, Error> {
                        Ok(i)
                    }
                ),
                "cannot be `unsafe`",
            ),
            (
                quote!(
                    fn f<T>(i: DataModel) -> Result<DataModel, Error> {
                        Ok(i)
                    }
                ),
                "cannot be generic",
            ),
            (
                quote!(
                    fn f(i: DataModel) {}
                ),
                "returns nothing",
            ),
            (
                quote!(
                    fn f(&self, i: DataModel) -> Result<DataModel, Error> {
                        Ok(i)
                    }
                ),
                "not a method",
            ),
        ] {
            let out = expand_str(Kind::Map, TokenStream2::new(), item);
            assert!(
                out.contains("#[map_operator] must be used on a function `fn(DataModel) -> Result<DataModel, Error>`"),
                "{out}"
            );
            assert!(out.contains(what), "{what}: {out}");
        }
    }

    #[test]
    fn unknown_arguments_and_non_functions_are_refused() {
        let out = expand_str(
            Kind::Filter,
            quote!(inti = "x"),
            quote!(
                fn f(i: DataModel) -> Result<bool, Error> {
                    Ok(true)
                }
            ),
        );
        assert!(out.contains("unknown argument of #[filter_operator]"), "{out}");
        let out = expand_str(
            Kind::Delay,
            TokenStream2::new(),
            quote!(
                struct S;
            ),
        );
        assert!(out.contains("#[delay_operator] must be used on a function"), "{out}");
        assert!(out.contains("it is not on a function"), "{out}");
    }

    #[test]
    fn init_may_be_a_bare_path_but_not_a_non_path_string() {
        let out = expand_str(
            Kind::Map,
            quote!(init = setup::my_init),
            quote!(
                fn f(i: DataModel) -> Result<DataModel, Error> {
                    Ok(i)
                }
            ),
        );
        assert!(out.contains("fn_pointer1 (setup :: my_init)"), "{out}");
        let out = expand_str(
            Kind::Map,
            quote!(init = "not a path"),
            quote!(
                fn f(i: DataModel) -> Result<DataModel, Error> {
                    Ok(i)
                }
            ),
        );
        assert!(out.contains("`init` must name a function"), "{out}");
    }

    #[test]
    fn the_wit_is_the_repositorys_package_as_one_document() {
        let doc = wit_inline();
        assert_eq!(doc.matches("package ").count(), 1, "{doc}");
        for item in [
            "interface types",
            "interface hybrid-logical-clock",
            "interface logger",
            "world map-impl",
        ] {
            assert!(doc.contains(item), "{item}");
        }
    }
}
