//! The OCI config of a pushed component: `application/vnd.wasm.config.v0+json`, from the CNCF
//! "Wasm OCI artifact" layout (TAG Runtime's wasm working group), as the `oci-wasm` crate 0.6
//! writes it.
//!
//! Why our own types: this one JSON document is all wasmflow took from `oci-wasm`, and that crate
//! describes a component by decoding its WIT world with its own copy of the wasm-tools crates
//! (wit-component, wit-parser, wasm-metadata, wasm-encoder, wasmparser 0.253), a second copy next
//! to the ones composition and wasmtime use; dropping it takes that copy out of the binary. The
//! JSON keeps `oci-wasm`'s field names, order and shape (`null` for an absent `author` or
//! `target`, not a missing key), so registries and tools that read its configs read ours.
//!
//! The component's imports and exports are the names its binary gives them
//! ([`wasmflow_compose::inspect::component_world`]), which are the names `oci-wasm` reads out of
//! the decoded world: `ns:pkg/iface@version` for an interface, the plain name for a function,
//! an instance with a plain name or a type; in the binary's order. Like `oci-wasm`, imports of a
//! core module, a component or a value are left out: they have no place in a WIT world. Unlike
//! `oci-wasm`, a composed graph, whose per-operation imports repeat interfaces (its WIT decoder
//! panics on them), is described the same way.

use chrono::{DateTime, SecondsFormat, Utc};
use oci_client::client::{Config, ImageLayer};
use serde::{Serialize, Serializer};
use wasmflow_compose::inspect::WorldItem;

/// Config media type of a wasm component artifact.
pub const WASM_MANIFEST_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Layer media type of a wasm component artifact: the component's bytes.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The config's `architecture`: always `wasm`.
pub const WASM_ARCHITECTURE: &str = "wasm";
/// The config's `os` for a component (a core module would be `wasip1`).
pub const COMPONENT_OS: &str = "wasip2";

/// The config of a wasm artifact (`application/vnd.wasm.config.v0+json`). Fields in the order
/// `oci-wasm` writes them; the `Option`s are written as `null` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// When the config was made; RFC 3339 in UTC (`…Z`), with as many fraction digits (none, 3, 6
    /// or 9) as the time needs, as chrono's `serde` writes a `DateTime<Utc>`.
    #[serde(serialize_with = "rfc3339")]
    pub created: DateTime<Utc>,
    /// Who made it; wasmflow leaves it out (`null`).
    pub author: Option<String>,
    /// Always [`WASM_ARCHITECTURE`].
    pub architecture: String,
    /// [`COMPONENT_OS`] for a component.
    pub os: String,
    /// The digests (`sha256:<hex>`) of the manifest's layers, in the manifest's order, so that
    /// each artifact's config, and with it the config's digest, is unique.
    pub layer_digests: Vec<String>,
    /// The component's world; required when `os` is `wasip2`.
    pub component: Option<Component>,
}

/// The world of the component in the artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// The names of the component's exports.
    pub exports: Vec<String>,
    /// The names of the component's imports.
    pub imports: Vec<String>,
    /// Optional index metadata: a world the component targets. wasmflow leaves it out (`null`).
    pub target: Option<String>,
}

impl WasmConfig {
    /// The config and the layer for the component `bytes`, made now. Fails when `bytes` is not a
    /// readable component; the message does not name the file, the caller does.
    pub fn for_component(bytes: Vec<u8>) -> Result<(Self, ImageLayer), String> {
        let (imports, exports) = wasmflow_compose::inspect::component_world(&bytes).map_err(|e| e.to_string())?;
        let in_world = |item: &WorldItem| !matches!(item.kind, "module" | "component" | "value");
        let names = |items: Vec<WorldItem>| items.into_iter().map(|i| i.name).collect();
        let config = WasmConfig {
            created: Utc::now(),
            author: None,
            architecture: WASM_ARCHITECTURE.to_string(),
            os: COMPONENT_OS.to_string(),
            layer_digests: vec![crate::cache::sha256_digest(&bytes)],
            component: Some(Component {
                exports: names(exports),
                imports: names(imports.into_iter().filter(in_world).collect()),
                target: None,
            }),
        };
        Ok((config, ImageLayer::new(bytes, WASM_LAYER_MEDIA_TYPE.to_string(), None)))
    }

    /// The manifest's config: this as JSON, [`WASM_MANIFEST_CONFIG_MEDIA_TYPE`], no annotations.
    pub fn to_config(&self) -> Result<Config, serde_json::Error> {
        Ok(Config::new(
            serde_json::to_vec(self)?,
            WASM_MANIFEST_CONFIG_MEDIA_TYPE.to_string(),
            None,
        ))
    }
}

/// `created` as chrono's `serde` feature writes a `DateTime<Utc>` (which `oci-wasm` uses).
fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};
    use sha2::{Digest, Sha256};

    /// A component with each kind of import a WIT world has (an interface, an instance with a
    /// plain name, a function, a type) and one it has not (a core module), and an interface and a
    /// function export.
    const COMPONENT: &str = r#"
        (component
          (import "ns:pkg/input@1.2.0" (instance $in (export "f" (func))))
          (import "m" (core module))
          (import "op1-logger" (instance))
          (import "log" (func $log (param "msg" string)))
          (import "res" (type (sub resource)))
          (export "ns:pkg/output@1.2.0" (instance $in))
          (export "run" (func $log))
        )
    "#;

    fn config_json(config: &WasmConfig) -> String {
        let c = config.to_config().expect("serializes");
        assert_eq!(c.media_type, "application/vnd.wasm.config.v0+json");
        assert_eq!(c.annotations, None);
        String::from_utf8(c.data.to_vec()).expect("JSON is UTF-8")
    }

    /// The JSON oci-wasm 0.6 writes for this component (its `WasmConfig` and `Component`, chrono's
    /// serde for `created`, `null` for `author` and `target`), byte for byte.
    #[test]
    fn config_json_is_oci_wasm_s() {
        let bytes = wat::parse_str(COMPONENT).expect("valid component text");
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let (mut config, layer) = WasmConfig::for_component(bytes.clone()).expect("a component");
        assert_eq!(layer.media_type, "application/wasm");
        assert_eq!(layer.data.as_ref(), bytes.as_slice());
        assert_eq!(layer.annotations, None);

        config.created = Utc
            .with_ymd_and_hms(2024, 1, 2, 3, 4, 5)
            .single()
            .expect("a valid time")
            .with_nanosecond(120_000_000)
            .expect("a valid time");
        let expected = format!(
            concat!(
                r#"{{"created":"2024-01-02T03:04:05.120Z","author":null,"architecture":"wasm","os":"wasip2","#,
                r#""layerDigests":["{digest}"],"component":{{"exports":["ns:pkg/output@1.2.0","run"],"#,
                r#""imports":["ns:pkg/input@1.2.0","op1-logger","log","res"],"target":null}}}}"#
            ),
            digest = digest
        );
        assert_eq!(config_json(&config), expected);

        // Whole seconds have no fraction; otherwise 3, 6 or 9 digits, as many as needed.
        for (nanos, written) in [
            (0, "2024-01-02T03:04:05Z"),
            (1_000, "2024-01-02T03:04:05.000001Z"),
            (1, "2024-01-02T03:04:05.000000001Z"),
        ] {
            config.created = config.created.with_nanosecond(nanos).expect("a valid time");
            let json: serde_json::Value = serde_json::from_str(&config_json(&config)).expect("JSON");
            assert_eq!(json["created"], written);
        }
    }

    #[test]
    fn created_is_now() {
        let bytes = wat::parse_str("(component)").expect("valid component text");
        let before = Utc::now();
        let (config, _) = WasmConfig::for_component(bytes).expect("a component");
        assert!(config.created >= before && config.created <= Utc::now());
        let json: serde_json::Value = serde_json::from_str(&config_json(&config)).expect("JSON");
        let component = &json["component"];
        assert_eq!(component["imports"], serde_json::json!([]));
        assert_eq!(component["exports"], serde_json::json!([]));
    }

    #[test]
    fn a_core_module_is_not_a_component() {
        let bytes = wat::parse_str("(module)").expect("valid module text");
        let e = WasmConfig::for_component(bytes).expect_err("not a component");
        assert!(e.contains("not a WebAssembly component"), "{e}");
        let e = WasmConfig::for_component(b"\0asm\x0d\0\x01\0junk".to_vec()).expect_err("unreadable");
        assert!(e.contains("not a readable WebAssembly component"), "{e}");
    }
}
