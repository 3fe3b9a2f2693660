//! Issue 17, item 5: the Kubernetes example in `deploy/` holds together without a cluster. Its
//! documents are parsed and checked against each other (the Service selects the Redis pods and
//! exposes the port `--state` names; the probes ask the port `--metrics` serves; the files the
//! arguments name are the volumes the Secret and ConfigMap fill) and against the `wasmflow`
//! binary itself (every flag of the container's command line is one `wasmflow run --help`
//! lists). The DataflowGraph in the ConfigMap is the seed's Example 1 shape on a shared
//! subscription, as N replicas need.

use std::process::Command;

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::support::repo;

fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} `{name}` in deploy/kubernetes.yaml"))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} missing from {args:?}"));
    &args[i + 1]
}

#[test]
fn the_kubernetes_example_holds_together() {
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes.yaml")).expect("deploy/kubernetes.yaml");
    let docs = documents(&text);

    // Redis: a Deployment, and a Service selecting its pods on the port --state names.
    let redis = find(&docs, "Deployment", "redis");
    let service = find(&docs, "Service", "redis");
    let pod_labels = &redis["spec"]["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"].as_mapping().expect("a selector") {
        assert_eq!(&pod_labels[k], v, "the Service selects the Redis pods");
    }
    let redis_port = service["spec"]["ports"][0]["port"].as_u64().expect("a port");

    // wasmflow: N replicas, each a `wasmflow run` of the ConfigMap's resources.
    let wf = find(&docs, "Deployment", "wasmflow");
    let replicas = wf["spec"]["replicas"].as_u64().expect("replicas");
    assert!(replicas >= 2, "an example of scaling out: {replicas} replicas");
    let pod = &wf["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<String> = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|a| str_of(a).to_owned())
        .collect();
    assert_eq!(args[0], "run");

    // Every flag is one `wasmflow run` has.
    let help = Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .args(["run", "--help"])
        .output()
        .expect("wasmflow run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for a in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(&format!("{a} ")) || help.contains(&format!("{a}\n")),
            "`wasmflow run` has no {a}"
        );
    }

    // --state names the Redis Service and port; the password comes from the Secret, as a file.
    assert_eq!(flag(&args, "--state"), format!("redis://redis:{redis_port}"));
    let mounts = container["volumeMounts"].as_sequence().expect("volume mounts");
    let volume_of = |path: &str| -> &Value {
        let m = mounts
            .iter()
            .find(|m| std::path::Path::new(path).parent() == Some(std::path::Path::new(str_of(&m["mountPath"]))))
            .unwrap_or_else(|| panic!("{path} is on no volume"));
        pod["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == m["name"])
            .expect("the mount's volume")
    };
    let password = flag(&args, "--state-password-file");
    let secret = find(&docs, "Secret", str_of(&volume_of(password)["secret"]["secretName"]));
    let key = password.rsplit('/').next().unwrap();
    assert!(secret["stringData"][key].is_string(), "the Secret holds `{key}`");

    // --instance is the pod's name; the probes ask the port --metrics serves.
    assert_eq!(flag(&args, "--instance"), "$(POD_NAME)");
    let env = container["env"].as_sequence().expect("env");
    assert!(env
        .iter()
        .any(|e| e["name"] == "POD_NAME" && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"));
    let metrics_port: u64 = flag(&args, "--metrics").rsplit(':').next().unwrap().parse().unwrap();
    let named = &container["ports"][0];
    assert_eq!(named["containerPort"].as_u64(), Some(metrics_port));
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        assert_eq!(container[probe]["httpGet"]["path"], path);
        assert_eq!(container[probe]["httpGet"]["port"], named["name"]);
    }

    // The graph file is the ConfigMap's: the seed's Example 1 on a shared subscription.
    let graph = &args[1];
    let config_map = find(&docs, "ConfigMap", str_of(&volume_of(graph)["configMap"]["name"]));
    let resources = documents(str_of(&config_map["data"][graph.rsplit('/').next().unwrap()]));
    let dataflow = resources
        .iter()
        .find(|d| d["kind"] == "DataflowGraph")
        .expect("a DataflowGraph in the ConfigMap");
    let nodes = dataflow["spec"]["nodes"].as_sequence().expect("nodes");
    let kinds: Vec<&str> = nodes.iter().map(|n| str_of(&n["nodeType"])).collect();
    assert_eq!(kinds, ["Source", "Graph", "Destination"]);
    let sources = nodes[0]["sourceSettings"]["dataSources"]
        .as_sequence()
        .expect("dataSources");
    for s in sources {
        assert!(
            str_of(s).starts_with("$share/"),
            "{replicas} replicas read a shared subscription: {s:?}"
        );
    }
    let endpoint = str_of(&nodes[0]["sourceSettings"]["endpointRef"]);
    assert!(
        resources
            .iter()
            .any(|d| d["kind"] == "DataflowEndpoint" && d["metadata"]["name"] == endpoint),
        "the source's endpoint `{endpoint}` is in the ConfigMap"
    );
    let connections: Vec<(&str, &str)> = dataflow["spec"]["nodeConnections"]
        .as_sequence()
        .expect("nodeConnections")
        .iter()
        .map(|c| (str_of(&c["from"]["name"]), str_of(&c["to"]["name"])))
        .collect();
    let names: Vec<&str> = nodes.iter().map(|n| str_of(&n["name"])).collect();
    assert_eq!(connections, [(names[0], names[1]), (names[1], names[2])]);
}
