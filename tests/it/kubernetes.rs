//! `deploy/kubernetes/`: every manifest validates against the Kubernetes
//! schemas offline (`kubernetes-validate`, PyPI), every kustomization
//! lists exactly its directory's manifests and builds (`kubectl kustomize`,
//! when kubectl is installed), and every tern.toml a ConfigMap mounts passes
//! `tern check-config` with the flags the pods pass.
//!
//! kubernetes-validate missing: a failure with `TERN_REQUIRE_INTEROP=1`, a
//! loud skip otherwise (`pip install kubernetes-validate`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::run_tool;

/// Kinds the Kubernetes schemas do not describe, and why skipping is safe.
const NOT_IN_SCHEMAS: &[(&str, &str)] = &[
    (
        "Kustomization",
        "kustomize's own file, checked by kustomizations_list_their_manifests",
    ),
    (
        "PodMonitor",
        "a Prometheus-operator CRD; checked by podmonitor_matches_the_daemonset",
    ),
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// Every `*.yaml` under `dir`, recursively, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(yaml_files(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The top-level `kind:` of each document in a manifest file.
fn kinds(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .map(str::trim)
        .collect()
}

/// A tool from PATH; missing → panic under TERN_REQUIRE_INTEROP=1 when
/// `required`, else a loud skip naming how to install it (`install`).
pub(crate) fn tool(name: &str, install: &str, required: bool) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let strict = std::env::var("TERN_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
        assert!(
            !(required && strict),
            "{name} not found on PATH and TERN_REQUIRE_INTEROP=1: {install}"
        );
        eprintln!("\n***** SKIPPED: {name} not found on PATH ({install}) *****\n");
    }
    found
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let Some(kv) = tool(
        "kubernetes-validate",
        "pip install kubernetes-validate",
        true,
    ) else {
        return;
    };
    let files = yaml_files(&deploy_dir());
    assert!(files.len() >= 8, "manifests missing: {files:?}");
    let mut validated = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let ks = kinds(&text);
        assert!(!ks.is_empty(), "{}: no kind", f.display());
        let skipped: Vec<_> = ks
            .iter()
            .filter_map(|k| NOT_IN_SCHEMAS.iter().find(|(n, _)| n == k))
            .collect();
        if skipped.len() == ks.len() {
            eprintln!("{}: not validated: {}", f.display(), skipped[0].1);
            continue;
        }
        assert!(
            skipped.is_empty(),
            "{}: mixes schema and non-schema kinds",
            f.display()
        );
        let out = run_tool(
            Command::new(&kv).args(["--strict", "--quiet"]).arg(f),
            Duration::from_secs(60),
        );
        assert!(
            out.success() && !out.stdout.contains("ERROR"),
            "{} does not validate:\n{out}",
            f.display()
        );
        validated += 1;
    }
    assert!(validated >= 6, "only {validated} manifests validated");
}

/// The `resources:` entries of a kustomization.yaml.
fn resources(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in text.lines() {
        if l.starts_with("resources:") {
            inside = true;
        } else if inside && l.starts_with("  - ") {
            out.push(l[4..].trim().to_owned());
        } else if inside && !l.trim_start().starts_with('#') && !l.starts_with("  ") {
            inside = false;
        }
    }
    out
}

#[test]
fn kustomizations_list_their_manifests_and_build() {
    let root = deploy_dir();
    for k in yaml_files(&root)
        .into_iter()
        .filter(|p| p.ends_with("kustomization.yaml"))
    {
        let dir = k.parent().unwrap();
        let listed = resources(&std::fs::read_to_string(&k).unwrap());
        for r in &listed {
            assert!(dir.join(r).exists(), "{}: {r} does not exist", k.display());
        }
        for f in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
            let name = f.file_name().unwrap().to_str().unwrap().to_owned();
            if name.ends_with(".yaml") && name != "kustomization.yaml" {
                assert!(listed.contains(&name), "{}: {name} not listed", k.display());
            }
        }
    }
    let Some(kubectl) = tool("kubectl", "optional: builds the kustomizations", false) else {
        return;
    };
    // A copy with the files an operator supplies: the REST secret, and the
    // dashboard if deploy/grafana/tern.json is not there yet.
    let tmp = tempfile::tempdir().unwrap();
    let deploy = root.parent().unwrap();
    let copy = tmp.path().join("deploy");
    copy_dir(deploy, &copy);
    std::fs::write(copy.join("kubernetes/rest_secrets"), "test-secret\n").unwrap();
    std::fs::write(
        copy.join("kubernetes/nonce_key"),
        "test-nonce-key-of-some-length\n",
    )
    .unwrap();
    let dash = copy.join("grafana/tern.json");
    if !dash.exists() {
        std::fs::write(dash, "{}").unwrap();
    }
    for dir in ["kubernetes", "kubernetes/in-cluster"] {
        let out = run_tool(
            Command::new(&kubectl).arg("kustomize").arg(copy.join(dir)),
            Duration::from_secs(60),
        );
        assert!(out.success(), "kustomize {dir}:\n{out}");
        assert!(out.stdout.contains("kind: ConfigMap"), "{out}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let t = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// The `tern.toml: |` block of a ConfigMap, de-indented.
fn embedded_toml(text: &str) -> Option<String> {
    let mut lines = text.lines().skip_while(|l| l.trim() != "tern.toml: |");
    lines.next()?;
    let body: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .collect();
    Some(
        body.iter()
            .map(|l| l.get(4..).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[test]
fn mounted_configs_pass_check_config() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("rest_secrets");
    std::fs::write(&secret, "test-secret\n").unwrap();
    let nonce_key = tmp.path().join("nonce_key");
    std::fs::write(&nonce_key, "test-nonce-key-of-some-length\n").unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (crt, key) = (tmp.path().join("tls.crt"), tmp.path().join("tls.key"));
    std::fs::write(&crt, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    // Where the pods mount the Secrets → the files made above.
    let mounts = [
        ("/etc/tern/secrets/rest_secrets", &secret),
        ("/etc/tern/secrets/nonce_key", &nonce_key),
        ("/etc/tern/tls/tls.crt", &crt),
        ("/etc/tern/tls/tls.key", &key),
    ];
    let mut checked = 0;
    for f in yaml_files(&deploy_dir()) {
        let text = std::fs::read_to_string(&f).unwrap();
        let Some(mut toml) = embedded_toml(&text) else {
            continue;
        };
        for (path, file) in mounts {
            toml = toml.replace(path, file.to_str().unwrap());
        }
        let cfg = tmp.path().join(format!("{checked}.toml"));
        std::fs::write(&cfg, &toml).unwrap();
        // With the per-node flags the pods pass (--relay-address from
        // status.hostIP / status.podIP, --advertised-address from the Node).
        let out = run_tool(
            Command::new(env!("CARGO_BIN_EXE_tern"))
                .arg("check-config")
                .arg("--config")
                .arg(&cfg)
                .args(["--relay-address", "127.0.0.1"])
                .args(["--advertised-address", "203.0.113.7"]),
            Duration::from_secs(30),
        );
        assert!(
            out.success(),
            "{}: tern.toml fails check-config:\n{toml}\n{out}",
            f.display()
        );
        checked += 1;
    }
    assert_eq!(
        checked, 2,
        "expected the DaemonSet and in-cluster ConfigMaps"
    );
}

#[test]
fn podmonitor_matches_the_daemonset() {
    let dir = deploy_dir();
    let pm = std::fs::read_to_string(dir.join("podmonitor.yaml")).unwrap();
    let ds = std::fs::read_to_string(dir.join("daemonset.yaml")).unwrap();
    assert!(pm.contains("apiVersion: monitoring.coreos.com/v1"));
    assert!(pm.contains("app.kubernetes.io/name: tern"));
    assert!(ds.contains("app.kubernetes.io/name: tern"));
    assert!(pm.contains("- port: admin"));
    assert!(ds.contains("{name: admin, containerPort: 9641, protocol: TCP}"));
}
