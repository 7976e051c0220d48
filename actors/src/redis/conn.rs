//! The connection to Redis in each deployment it may have: one server, a Sentinel-watched
//! master, or a Cluster, each through the redis crate's own client; `Conn` carries commands.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, PubSub,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::OnceCell;

use super::RedisError;

/// Where Redis is and how it fails over (`redis.url`, `redis.sentinels`, `redis.cluster_nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server (`redis://…` or `rediss://…`).
    Single(String),
    /// A master found through Sentinel: the sentinels' addresses and the master's name.
    Sentinel {
        /// `redis://host:port` of each sentinel.
        sentinels: Vec<String>,
        /// The name the sentinels monitor the master under.
        master: String,
    },
    /// A Redis Cluster: `redis://host:port` of some of its nodes (the rest are discovered).
    Cluster(Vec<String>),
}

/// A command channel to whichever Redis is configured. Cheap to clone; every clone shares one
/// connection (per node, for Cluster).
#[derive(Clone)]
pub enum Conn {
    /// One server; reconnects by itself.
    Single(ConnectionManager, Arc<str>),
    /// The current master as the sentinels name it.
    Sentinel(Arc<SentinelConn>),
    /// The cluster; follows slot moves and failovers by itself once connected.
    Cluster(Arc<LazyCluster>),
}

impl Conn {
    /// Prepares the connection (made on first use, so a replica starts while Redis is down)
    /// with `timeout` for connecting and for each answer.
    pub fn open(topology: &Topology, timeout: Duration) -> Result<Conn, RedisError> {
        let config = |e: redis::RedisError| RedisError::Config(e.to_string());
        match topology {
            Topology::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(config)?;
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(timeout);
                ConnectionManager::new_lazy_with_config(client, cfg)
                    .map(|c| Conn::Single(c, Arc::from(url.as_str())))
                    .map_err(config)
            }
            Topology::Sentinel { sentinels, master } => {
                let client = SentinelClient::build(
                    sentinels.clone(),
                    master.clone(),
                    None,
                    SentinelServerType::Master,
                )
                .map_err(config)?;
                Ok(Conn::Sentinel(Arc::new(SentinelConn {
                    client: tokio::sync::Mutex::new(client),
                    current: Mutex::new(None),
                    cfg: AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(timeout))
                        .set_response_timeout(Some(timeout)),
                })))
            }
            Topology::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(100)
                    .build()
                    .map_err(config)?;
                Ok(Conn::Cluster(Arc::new(LazyCluster {
                    client,
                    nodes: nodes.clone(),
                    conn: OnceCell::new(),
                })))
            }
        }
    }

    /// A fresh pub/sub connection: to the server, to the current master, or to the first
    /// cluster node that answers (a cluster delivers every `PUBLISH` to every node).
    pub async fn pubsub(&self) -> RedisResult<PubSub> {
        match self {
            Conn::Single(_, url) => redis::Client::open(&**url)?.get_async_pubsub().await,
            Conn::Sentinel(s) => {
                let client = s.client.lock().await.async_get_client().await?;
                client.get_async_pubsub().await
            }
            Conn::Cluster(c) => {
                let mut last = None;
                for node in &c.nodes {
                    match redis::Client::open(node.as_str()) {
                        Ok(client) => match client.get_async_pubsub().await {
                            Ok(ps) => return Ok(ps),
                            Err(e) => last = Some(e),
                        },
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    (redis::ErrorKind::InvalidClientConfig, "no cluster nodes").into()
                }))
            }
        }
    }
}

/// The master named by the sentinels, connected on first use; any failure forgets it, so the
/// next command asks the sentinels again (after a failover they name the promoted replica).
pub struct SentinelConn {
    client: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Option<MultiplexedConnection>>,
    cfg: AsyncConnectionConfig,
}

impl SentinelConn {
    fn cached(&self) -> Option<MultiplexedConnection> {
        self.current.lock().ok().and_then(|c| c.clone())
    }

    async fn get(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let mut client = self.client.lock().await;
        // Another caller may have connected while this one waited.
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let conn = client.get_async_connection_with_config(&self.cfg).await?;
        if let Ok(mut cur) = self.current.lock() {
            *cur = Some(conn.clone());
        }
        Ok(conn)
    }

    /// Forgets the master after a failure: a dead one refuses, a demoted one answers
    /// `READONLY`; either way the sentinels are asked again.
    fn forget(&self) {
        if let Ok(mut cur) = self.current.lock() {
            *cur = None;
        }
    }

    async fn with<T>(
        &self,
        op: impl AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let mut c = self.get().await?;
        let res = op(&mut c).await;
        if res.is_err() {
            self.forget();
        }
        res
    }
}

/// A cluster connection made on first use (and retried until it is made once).
pub struct LazyCluster {
    client: ClusterClient,
    nodes: Vec<String>,
    conn: OnceCell<ClusterConnection>,
}

impl LazyCluster {
    async fn get(&self) -> RedisResult<ClusterConnection> {
        self.conn
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c, _) => c.req_packed_command(cmd),
            Conn::Sentinel(s) => {
                Box::pin(async move { s.with(async |c| c.req_packed_command(cmd).await).await })
            }
            Conn::Cluster(cl) => {
                Box::pin(async move { cl.get().await?.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c, _) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(s) => Box::pin(async move {
                s.with(async |c| c.req_packed_commands(pipeline, offset, count).await)
                    .await
            }),
            Conn::Cluster(cl) => Box::pin(async move {
                cl.get()
                    .await?
                    .req_packed_commands(pipeline, offset, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c, _) => c.get_db(),
            Conn::Sentinel(_) | Conn::Cluster(_) => 0,
        }
    }
}
