//! The monitoring in deploy/monitoring/ is drawn over metrics attachd really exports: every
//! `attachd_*` name in the Grafana dashboard and the alert rules appears in a fresh `/metrics`.

use std::collections::BTreeSet;

use crate::support::*;

/// `attachd_*` names in `text` (a PromQL query, a rule file, a dashboard).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("attachd_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        // `attachd_` inside a longer word (such as "x_attachd_y") is not a name.
        let before = rest[..i].chars().next_back();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn dashboard_and_alerts_use_exported_metrics() {
    let dir = repo_root().join("deploy/monitoring");
    let dashboard = std::fs::read_to_string(dir.join("grafana-dashboard.json")).expect("dashboard");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    let exprs: Vec<String> = parsed["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(
        exprs.len() >= 20,
        "the dashboard has {} queries",
        exprs.len()
    );
    let rules = std::fs::read_to_string(dir.join("prometheusrule.yaml")).expect("rules");
    let mut used = metric_names(&exprs.join("\n"));
    let in_rules = metric_names(&rules);
    assert!(in_rules.len() >= 5, "the rules use {in_rules:?}");
    used.extend(in_rules);

    let srv = Server::start(Opts::default());
    let scrape = srv.metrics().await;
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = used.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the monitoring uses metrics attachd does not export: {missing:?}\n{scrape}"
    );
}
