//! Real Redis on loopback: one server (killed and restarted on its port by outage tests), and
//! the failover deployments: a master, a replica and three sentinels; a three-master cluster
//! with one replica each. Every process dies with its value.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::free_port;

/// One `redis-server` (plain, replica, sentinel or cluster node) on a free loopback port,
/// killed on drop.
pub struct Redis {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// `redis-cli -p PORT ARGS…`'s output, trimmed.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("redis-cli is required (apt-get install redis-tools): {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} within {secs} s");
}

/// Whether a server answers `PING` on `port` (spoken directly: no redis-cli needed).
fn pongs(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

impl Redis {
    /// A plain server.
    pub fn start() -> Redis {
        Redis::with(&[])
    }

    /// A server with `extra` arguments (after port, bind and no persistence).
    fn with(extra: &[String]) -> Redis {
        let port = free_port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend_from_slice(extra);
        Redis::launch(port, args, tempfile::tempdir().expect("tempdir"))
    }

    /// A sentinel watching `master_port` as `name` (quorum 2, down after 1 s).
    fn sentinel(name: &str, master_port: u16) -> Redis {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nsentinel monitor {name} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {name} 1000\n\
                 sentinel failover-timeout {name} 10000\nsentinel parallel-syncs {name} 1\n"
            ),
        )
        .expect("sentinel.conf");
        let args = vec![conf.display().to_string(), "--sentinel".to_string()];
        Redis::launch(port, args, dir)
    }

    fn launch(port: u16, args: Vec<String>, dir: tempfile::TempDir) -> Redis {
        let mut r = Redis {
            port,
            args,
            child: None,
            dir,
        };
        r.spawn();
        r
    }

    /// Runs the server (in its directory, on its port) and waits until it answers.
    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server is required for this test (apt-get install redis-server): {e}")
            });
        self.child = Some(child);
        let port = self.port;
        wait_until("redis-server answers PING", 10, || pongs(port));
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and starts it again on the same port (its data is gone).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A master, one replica and three sentinels monitoring it as `mymaster`.
pub struct SentinelSet {
    pub master: Redis,
    pub replica: Redis,
    pub sentinels: Vec<Redis>,
}

pub const MASTER_NAME: &str = "mymaster";

impl SentinelSet {
    pub fn start() -> SentinelSet {
        let master = Redis::start();
        let replica = Redis::with(&[
            "--replicaof".into(),
            "127.0.0.1".into(),
            master.port.to_string(),
        ]);
        wait_until("the replica is in sync", 15, || {
            cli(replica.port, &["INFO", "replication"]).contains("master_link_status:up")
        });
        let sentinels: Vec<Redis> = (0..3)
            .map(|_| Redis::sentinel(MASTER_NAME, master.port))
            .collect();
        let set = SentinelSet {
            master,
            replica,
            sentinels,
        };
        // Sentinels find the replica and each other through the master (hello messages).
        wait_until("every sentinel knows the replica and two peers", 20, || {
            set.sentinels.iter().all(|s| {
                let info = cli(s.port, &["SENTINEL", "MASTER", MASTER_NAME]);
                let field = |name: &str| {
                    let lines: Vec<&str> = info.lines().collect();
                    lines
                        .iter()
                        .position(|l| *l == name)
                        .and_then(|i| lines.get(i + 1))
                        .and_then(|v| v.parse::<u32>().ok())
                        .unwrap_or(0)
                };
                field("num-slaves") >= 1 && field("num-other-sentinels") >= 2
            })
        });
        set
    }

    /// `ATTACHD__REDIS__SENTINELS`: every sentinel's address.
    pub fn sentinels_env(&self) -> String {
        self.sentinels
            .iter()
            .map(Redis::addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The master's port as the first sentinel reports it.
    pub fn master_port(&self) -> u16 {
        let out = cli(
            self.sentinels[0].port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
        );
        out.lines().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0)
    }

    /// Kills the master and waits until the sentinels have promoted the replica.
    pub fn kill_master_and_wait_failover(&mut self) -> Duration {
        let started = Instant::now();
        self.master.kill();
        let replica = self.replica.port;
        wait_until("the sentinels promote the replica", 30, || {
            self.master_port() == replica && cli(replica, &["ROLE"]).starts_with("master")
        });
        started.elapsed()
    }
}

/// Three masters with one replica each, cluster-enabled, slots spread by `redis-cli --cluster
/// create`.
pub struct ClusterSet {
    pub nodes: Vec<Redis>,
}

impl ClusterSet {
    pub fn start() -> ClusterSet {
        let nodes: Vec<Redis> = (0..6)
            .map(|_| {
                Redis::with(&[
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    "nodes.conf".into(),
                    "--cluster-node-timeout".into(),
                    "1000".into(),
                    // An idle master's replica may always take over (by default one that has
                    // not heard from its master for a while refuses to).
                    "--cluster-replica-validity-factor".into(),
                    "0".into(),
                ])
            })
            .collect();
        let mut args = vec!["--cluster".to_string(), "create".to_string()];
        args.extend(nodes.iter().map(Redis::addr));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
        let out = Command::new("redis-cli")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("redis-cli is required (apt-get install redis-tools): {e}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let set = ClusterSet { nodes };
        wait_until("the cluster is ok on every node", 30, || {
            set.nodes
                .iter()
                .all(|n| cli(n.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        });
        set
    }

    /// `ATTACHD__REDIS__CLUSTER_NODES`: every node's address.
    pub fn nodes_env(&self) -> String {
        self.nodes
            .iter()
            .map(Redis::addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Index of the live node that serves `key`'s slot as master.
    pub fn master_of(&self, key: &str) -> usize {
        self.try_master_of(key)
            .unwrap_or_else(|| panic!("no live master serves {key}"))
    }

    /// The same, `None` while no healthy master serves it (during a failover).
    fn try_master_of(&self, key: &str) -> Option<usize> {
        let live = self
            .nodes
            .iter()
            .find(|n| n.child.is_some())
            .expect("a live node");
        let slot: u16 = cli(live.port, &["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("CLUSTER KEYSLOT");
        // CLUSTER NODES: id addr@bus flags master ping pong epoch state slots…
        let nodes = cli(live.port, &["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let serves = f[8..].iter().any(|r| match r.split_once('-') {
                Some((a, b)) => {
                    a.parse::<u16>().is_ok_and(|a| a <= slot)
                        && b.parse::<u16>().is_ok_and(|b| slot <= b)
                }
                None => r.parse::<u16>() == Ok(slot),
            });
            if serves {
                let port: u16 = f[1]
                    .split(['@', ':'])
                    .nth(1)
                    .and_then(|p| p.parse().ok())
                    .expect("node address");
                return self.nodes.iter().position(|n| n.port == port);
            }
        }
        None
    }

    /// Kills node `i` (a master) and waits until its replica serves its slots.
    pub fn kill_and_wait_failover(&mut self, i: usize, key: &str) -> Duration {
        let started = Instant::now();
        self.nodes[i].kill();
        let dead = self.nodes[i].port;
        wait_until("the cluster promotes the dead master's replica", 30, || {
            let live: Vec<&Redis> = self.nodes.iter().filter(|n| n.child.is_some()).collect();
            live.iter()
                .all(|n| cli(n.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
                && self
                    .try_master_of(key)
                    .is_some_and(|m| self.nodes[m].port != dead)
        });
        started.elapsed()
    }
}
