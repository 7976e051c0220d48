//! `redis.*`: the optional shared state of several replicas (one server, Sentinel or Cluster),
//! and what to do while Redis cannot be reached.

use attachd_actors::redis::Topology;
use serde::{Deserialize, Serialize};

use super::base::ConfigError;

/// What to do when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RedisOnError {
    /// Fall back to per-replica limits.
    #[default]
    Local,
    /// Refuse attaches.
    Deny,
    /// Admit without limits.
    Allow,
}

/// `redis.*`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`, or Sentinel as one URL (`redis+sentinel://host:port,…/master`);
    /// none (and no sentinels or cluster nodes) = per-process state.
    pub url: Option<String>,
    /// `host:port` of each Sentinel watching the master (with `sentinel_master`).
    pub sentinels: Vec<String>,
    /// The master's name at the sentinels.
    pub sentinel_master: Option<String>,
    /// `host:port` of some nodes of a Redis Cluster (the rest are discovered).
    pub cluster_nodes: Vec<String>,
    /// Outage policy.
    pub on_error: RedisOnError,
    /// Prefix of every key.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            sentinels: Vec::new(),
            sentinel_master: None,
            cluster_nodes: Vec::new(),
            on_error: RedisOnError::Local,
            key_prefix: "attachd:".into(),
        }
    }
}

impl RedisSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let given = [
            self.url.is_some(),
            !self.sentinels.is_empty(),
            !self.cluster_nodes.is_empty(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(ConfigError::new(
                self.topology_key(),
                "set one of redis.url, redis.sentinels, redis.cluster_nodes",
            ));
        }
        if let Some(url) = &self.url {
            if url.starts_with(SENTINEL_SCHEME) {
                sentinel_url(url).map_err(|m| ConfigError::new("redis.url", m))?;
                if self.sentinel_master.is_some() {
                    return Err(ConfigError::new(
                        "redis.sentinel_master",
                        "goes with redis.sentinels; a redis+sentinel:// URL names the master itself",
                    ));
                }
            } else if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::new(
                    "redis.url",
                    "must start with redis://, rediss:// or redis+sentinel://",
                ));
            }
        }
        if !self.sentinels.is_empty() && self.sentinel_master.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::new(
                "redis.sentinel_master",
                "is required with redis.sentinels (the name the sentinels monitor)",
            ));
        }
        if self.sentinels.is_empty() && self.sentinel_master.is_some() {
            return Err(ConfigError::new(
                "redis.sentinels",
                "is required with redis.sentinel_master",
            ));
        }
        for (key, list) in [
            ("redis.sentinels", &self.sentinels),
            ("redis.cluster_nodes", &self.cluster_nodes),
        ] {
            for node in list {
                node_url(node).map_err(|m| ConfigError::new(key, m))?;
            }
        }
        Ok(())
    }

    /// The key that says which Redis is configured (named in errors).
    pub fn topology_key(&self) -> &'static str {
        if !self.sentinels.is_empty() {
            "redis.sentinels"
        } else if !self.cluster_nodes.is_empty() {
            "redis.cluster_nodes"
        } else {
            "redis.url"
        }
    }

    /// Which Redis to use; none = per-process state. Call after `validate`.
    pub fn topology(&self) -> Option<Topology> {
        let urls = |l: &[String]| l.iter().filter_map(|n| node_url(n).ok()).collect();
        if !self.sentinels.is_empty() {
            return Some(Topology::Sentinel {
                sentinels: urls(&self.sentinels),
                master: self.sentinel_master.clone().unwrap_or_default(),
            });
        }
        if !self.cluster_nodes.is_empty() {
            return Some(Topology::Cluster(urls(&self.cluster_nodes)));
        }
        let url = self.url.as_deref()?;
        Some(match sentinel_url(url) {
            Ok((sentinels, master)) => Topology::Sentinel { sentinels, master },
            Err(_) => Topology::Single(url.to_string()),
        })
    }
}

/// Sentinel as one URL: `redis+sentinel://[user:password@]host:port[,host:port…]/master`,
/// the same as `redis.sentinels` (each sentinel with those credentials) and
/// `redis.sentinel_master`.
const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// The sentinels' URLs and the master's name in a `redis+sentinel://` URL.
fn sentinel_url(url: &str) -> Result<(Vec<String>, String), String> {
    const FORM: &str = "redis+sentinel://[user:password@]host:port[,host:port…]/master";
    let rest = url
        .strip_prefix(SENTINEL_SCHEME)
        .ok_or_else(|| format!("is not {FORM}"))?;
    let (hosts, master) = rest
        .split_once('/')
        .ok_or_else(|| format!("names no master: {FORM}"))?;
    if master.is_empty() || master.contains(['/', '?', '#']) {
        return Err(format!("the path is the master's name alone: {FORM}"));
    }
    let (auth, hosts) = match hosts.rsplit_once('@') {
        Some((auth, hosts)) => (Some(auth), hosts),
        None => (None, hosts),
    };
    let sentinels = hosts
        .split(',')
        .map(|h| {
            if h.contains("://") {
                return Err(format!("{h:?} is not host:port: {FORM}"));
            }
            let u = node_url(h)?;
            Ok(match auth {
                Some(a) => format!("redis://{a}@{h}"),
                None => u,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((sentinels, master.to_string()))
}

/// `host:port` (or a `redis://` / `rediss://` URL) as a URL.
fn node_url(node: &str) -> Result<String, String> {
    if node.starts_with("redis://") || node.starts_with("rediss://") {
        return Ok(node.to_string());
    }
    match node.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(format!("redis://{node}"))
        }
        _ => Err(format!("{node:?} is not host:port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The topology of a `[redis]` section, or the key its validation names.
    fn r(toml: &str) -> Result<Option<Topology>, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("attachd.toml");
        std::fs::write(&file, format!("[redis]\n{toml}\n")).unwrap();
        let s = super::super::load(Some(&file), true).map_err(|e| e.key.clone())?;
        s.redis.validate().map_err(|e| e.key)?;
        Ok(s.redis.topology())
    }

    #[test]
    fn redis_is_one_server_sentinels_or_a_cluster() {
        assert_eq!(r(""), Ok(None));
        assert_eq!(
            r("sentinels = [\"127.0.0.1:26379\", \"redis://h:26380\"]\nsentinel_master = \"m\""),
            Ok(Some(Topology::Sentinel {
                sentinels: vec!["redis://127.0.0.1:26379".into(), "redis://h:26380".into()],
                master: "m".into()
            }))
        );
        assert_eq!(
            r("cluster_nodes = [\"127.0.0.1:7000\"]"),
            Ok(Some(Topology::Cluster(vec![
                "redis://127.0.0.1:7000".into()
            ])))
        );
        assert_eq!(
            r("sentinels = [\"127.0.0.1:26379\"]"),
            Err("redis.sentinel_master".into())
        );
        assert_eq!(r("sentinel_master = \"m\""), Err("redis.sentinels".into()));
        assert_eq!(
            r("cluster_nodes = [\"no-port\"]"),
            Err("redis.cluster_nodes".into())
        );
        assert_eq!(
            r("url = \"redis://a/\"\ncluster_nodes = [\"b:1\"]"),
            Err("redis.cluster_nodes".into())
        );
    }

    #[test]
    fn a_sentinel_url_is_the_sentinel_list_and_master() {
        let listed = r("sentinels = [\"127.0.0.1:26379\", \"h:26380\"]\nsentinel_master = \"m\"");
        assert_eq!(
            r("url = \"redis+sentinel://127.0.0.1:26379,h:26380/m\""),
            listed,
            "one URL, the same topology as the list"
        );
        assert_eq!(
            r("url = \"redis+sentinel://u:p%40ss@[::1]:26379,h:1/mymaster\""),
            Ok(Some(Topology::Sentinel {
                sentinels: vec![
                    "redis://u:p%40ss@[::1]:26379".into(),
                    "redis://u:p%40ss@h:1".into()
                ],
                master: "mymaster".into()
            })),
            "credentials go to every sentinel"
        );
        for bad in [
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h:1/m/0",
            "redis+sentinel://h/m",
            "redis+sentinel://h:1,/m",
            "redis+sentinel:///m",
            "sentinel://h:1/m",
        ] {
            assert_eq!(
                r(&format!("url = \"{bad}\"")),
                Err("redis.url".into()),
                "{bad}"
            );
        }
        assert_eq!(
            r("url = \"redis+sentinel://h:1/m\"\nsentinel_master = \"m\""),
            Err("redis.sentinel_master".into())
        );
        assert_eq!(
            r("url = \"redis+sentinel://h:1/m\"\nsentinels = [\"h:1\"]"),
            Err("redis.sentinels".into())
        );
    }
}
