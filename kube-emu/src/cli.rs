//! Command line of the emulator: where to listen, the bearer token, the namespace and the pods
//! to declare (`--pod name=NAME,tenant=TENANT[,label=k=v...]`).

use std::{collections::BTreeMap, net::SocketAddr};

use clap::{Parser, ValueEnum};

/// Label every declared pod carries unless overridden with `label=`.
pub const PART_OF_LABEL: (&str, &str) = ("app.kubernetes.io/part-of", "sandbox");
/// Label naming the pod's tenant (attachd's default `kube.tenant_label`).
pub const TENANT_LABEL: &str = "attachd.dev/tenant";
/// Container name used when a pod spec names none.
pub const DEFAULT_CONTAINER: &str = "sandbox";

/// kube-emu: an EMULATION of the Kubernetes pod API and exec/attach channel protocols for
/// testing attachd. It is not a Kubernetes server: pods are local processes on local PTYs.
#[derive(Debug, Parser)]
#[command(name = "kube-emu", version)]
pub struct Args {
    /// Address to listen on; port 0 picks a free one (printed as the first stdout line).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Bearer token every request must carry (`Authorization: Bearer <token>`).
    #[arg(
        long,
        env = "KUBE_EMU_TOKEN",
        hide_env_values = true,
        required_unless_present = "token_file",
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// File holding the bearer token (surrounding whitespace is ignored).
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// Namespace the declared pods live in (attachd's default `kube.namespace`).
    #[arg(long, default_value = "sandboxes")]
    pub namespace: String,
    /// A pod: `name=NAME,tenant=TENANT[,container=C][,label=k=v]...` (repeatable).
    #[arg(long = "pod", value_parser = parse_pod)]
    pub pods: Vec<PodSpec>,
    /// Main process of every pod (its container's TTY process, what `attach` reaches).
    #[arg(long, default_value = "/bin/sh")]
    pub shell: String,
    /// Newest channel subprotocol to offer; `v4` forces clients onto `v4.channel.k8s.io`.
    #[arg(long, value_enum, default_value_t = MaxProtocol::V5)]
    pub max_protocol: MaxProtocol,
    /// HTTP worker threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

/// Newest remote-command subprotocol the emulator agrees to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MaxProtocol {
    /// Only `v4.channel.k8s.io`.
    V4,
    /// `v5.channel.k8s.io` preferred, `v4.channel.k8s.io` accepted.
    V5,
}

/// A declared pod.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// Pod name (a DNS-1123 subdomain).
    pub name: String,
    /// The only container's name.
    pub container: String,
    /// Labels, including the default part-of label and the tenant label.
    pub labels: BTreeMap<String, String>,
}

impl Args {
    /// The bearer token, from `--token`/`KUBE_EMU_TOKEN` or `--token-file`.
    pub fn bearer_token(&self) -> std::io::Result<String> {
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => t.trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)?.trim().to_owned(),
            (None, None) => String::new(),
        };
        if token.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the bearer token is empty",
            ));
        }
        Ok(token)
    }
}

/// Parses `name=NAME,tenant=TENANT[,container=C][,label=k=v]...`.
pub fn parse_pod(spec: &str) -> Result<PodSpec, String> {
    let mut name = None;
    let mut container = DEFAULT_CONTAINER.to_owned();
    let mut labels = BTreeMap::from([(PART_OF_LABEL.0.to_owned(), PART_OF_LABEL.1.to_owned())]);
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not key=value"))?;
        match key {
            "name" => name = Some(value.to_owned()),
            "tenant" => {
                labels.insert(TENANT_LABEL.to_owned(), value.to_owned());
            }
            "container" => container = value.to_owned(),
            "label" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("label `{value}` is not k=v"))?;
                if v.is_empty() {
                    labels.remove(k);
                } else {
                    labels.insert(k.to_owned(), v.to_owned());
                }
            }
            other => return Err(format!("unknown pod key `{other}`")),
        }
    }
    let name = name.ok_or("a pod needs name=NAME")?;
    if !is_dns_subdomain(&name) {
        return Err(format!("pod name `{name}` is not a DNS-1123 subdomain"));
    }
    Ok(PodSpec {
        name,
        container,
        labels,
    })
}

/// True for a valid Kubernetes object name (DNS-1123 subdomain).
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_spec_with_tenant_and_extra_labels() {
        let p = parse_pod("name=p1,tenant=acme,label=tier=gold,container=main").unwrap();
        assert_eq!(p.name, "p1");
        assert_eq!(p.container, "main");
        assert_eq!(p.labels[TENANT_LABEL], "acme");
        assert_eq!(p.labels["tier"], "gold");
        assert_eq!(p.labels[PART_OF_LABEL.0], PART_OF_LABEL.1);
    }

    #[test]
    fn empty_label_value_removes_the_default() {
        let p = parse_pod("name=p1,label=app.kubernetes.io/part-of=").unwrap();
        assert!(!p.labels.contains_key(PART_OF_LABEL.0));
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(parse_pod("tenant=acme").is_err());
        assert!(parse_pod("name=../x").is_err());
        assert!(parse_pod("name=p,bogus=1").is_err());
    }
}
