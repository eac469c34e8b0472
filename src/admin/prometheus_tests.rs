use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::*;
use crate::admin::metrics::Metrics;

fn sample_metrics() -> Metrics {
    let m = Metrics::new(2);
    m.workers[0].request(Method::Allocate, Transport::Udp);
    m.workers[1].request(Method::Allocate, Transport::Tcp);
    m.workers[0].response(Method::Allocate, 401);
    m.workers[0].response(Method::Allocate, 200);
    m.workers[0].set_allocations(Transport::Udp, Family::Ipv4, 3);
    m.workers[1].set_allocations(Transport::Udp, Family::Ipv4, 4);
    let stats = |to_peer| crate::proto::turn::Stats {
        relayed_to_peer: to_peer,
        ..Default::default()
    };
    m.workers[0].publish_turn_stats(&stats(10));
    m.workers[0].publish_relay_bytes(1000, 0, 0);
    m.workers[1].publish_turn_stats(&stats(5));
    m.workers[1].publish_relay_bytes(500, 0, 0);
    m.workers[1].allocation_ended(Duration::from_secs(20));
    m.workers[1].auth_failure(AuthFailure::StaleNonce);
    m.global.reload(ReloadResult::Failure);
    m
}

fn rendered() -> String {
    let mut s = String::new();
    render(&sample_metrics(), &mut s);
    s
}

/// Families declared by `# TYPE` lines.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_listed_metric_is_rendered_and_no_other() {
    let got = families(&rendered());
    let want: BTreeSet<String> = METRIC_NAMES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(got, want);
}

#[test]
fn worker_blocks_are_summed() {
    let s = rendered();
    assert!(s.contains("tern_allocations{transport=\"udp\",family=\"ipv4\"} 7\n"));
    assert!(s.contains("tern_relay_packets_total{direction=\"client_to_peer\"} 15\n"));
    assert!(s.contains("tern_relay_bytes_total{direction=\"client_to_peer\"} 1500\n"));
    assert!(s.contains("tern_requests_total{method=\"allocate\",transport=\"udp\"} 1\n"));
    assert!(s.contains("tern_responses_total{method=\"allocate\",code=\"401\"} 1\n"));
    assert!(s.contains("tern_auth_failures_total{reason=\"stale_nonce\"} 1\n"));
    assert!(s.contains("tern_config_reloads_total{result=\"error\"} 1\n"));
    assert!(s.contains("tern_allocation_duration_seconds_bucket{le=\"30\"} 1\n"));
    assert!(s.contains("tern_allocation_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
    assert!(s.contains("tern_allocation_duration_seconds_sum 20\n"));
    assert!(s.contains("tern_build_info{version=\""));
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape_label("plain"), "plain");
    assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    let mut s = String::new();
    Encoder::new(&mut s).sample("x", &[("k", "\"")], 1);
    assert_eq!(s, "x{k=\"\\\"\"} 1\n");
}

/// `promtool check metrics` on the rendered text.
#[test]
fn promtool_accepts_the_exposition() {
    promtool_check(&rendered());
}

/// Lints `text` with `promtool check metrics`. A missing promtool fails
/// when TERN_REQUIRE_INTEROP=1 and skips loudly otherwise.
pub(crate) fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("TERN_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "promtool not runnable ({e}) and TERN_REQUIRE_INTEROP=1: install the `prometheus` package"
            );
            eprintln!("SKIPPED promtool check: promtool not found ({e})");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool exits non-zero on lint problems as well as parse errors.
    assert!(
        out.status.success() && msg.trim().is_empty(),
        "promtool: {msg}\n{text}"
    );
}

/// Every metric the Grafana dashboard queries is exported.
#[test]
fn dashboard_queries_only_exported_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/tern.json");
    let text = std::fs::read_to_string(path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&json, &mut exprs);
    assert!(exprs.len() >= 8, "dashboard has too few queries: {exprs:?}");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        for name in metric_names_in(expr) {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suf| name.strip_suffix(suf).filter(|b| METRIC_NAMES.contains(b)))
                .unwrap_or(&name)
                .to_owned();
            assert!(
                METRIC_NAMES.contains(&base.as_str()),
                "dashboard queries {name:?} (in {expr:?}), which tern does not export"
            );
            used.insert(base);
        }
    }
    for must in [
        "tern_allocations",
        "tern_relay_packets_total",
        "tern_relay_bytes_total",
        "tern_relay_dropped_packets_total",
        "tern_auth_failures_total",
        "tern_udp_receive_drops_total",
        "tern_config_reloads_total",
        "tern_tls_certificate_expiry_timestamp_seconds",
    ] {
        assert!(used.contains(must), "dashboard lacks a panel on {must}");
    }
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// Identifiers in a PromQL expression that look like tern or process
/// metric names (label names and functions never start with these prefixes).
fn metric_names_in(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("tern_") || w.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}
