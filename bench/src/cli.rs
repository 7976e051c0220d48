//! Command line: global target options and one subcommand per scenario.
//! Every size has a default small enough to finish in seconds on a 2-core machine.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load generator for attachd and comparable terminal gateways (loopback only).
#[derive(Debug, Parser)]
#[command(name = "attachd-bench", version)]
pub struct Cli {
    /// Base URL of the server under test (must be on 127.0.0.0/8 or localhost); a
    /// comma-separated list means replicas (connect-storm spreads over them).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// API token secret (attachd only).
    #[arg(long, global = true, env = "ATTACHD_BENCH_TOKEN", default_value = "")]
    pub token: String,
    /// Wire protocol of the server under test.
    #[arg(long, global = true, value_enum, default_value_t = Proto::Attachd)]
    pub proto: Proto,
    /// Server process id: RSS and CPU time are sampled from /proc around the run.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// Label for the results row (defaults to the protocol name).
    #[arg(long, global = true)]
    pub label: Option<String>,
    /// Append the JSON record to this file (one record a line).
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// Append a markdown table row for the record to this file.
    #[arg(long, global = true)]
    pub md: Option<PathBuf>,
    /// Hard deadline of a scenario in seconds; it stops and reports what it has.
    #[arg(long, global = true, default_value_t = 180)]
    pub deadline_secs: u64,
    /// Client runtime worker threads.
    #[arg(long, global = true, default_value_t = 2)]
    pub threads: usize,
    /// The scenario.
    #[command(subcommand)]
    pub command: Command,
}

/// Which server protocol the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    /// attachd: tickets, `attach.v1`, binary output frames.
    Attachd,
    /// terminado: `/websocket/<name>`, JSON `["stdin", ..]` / `["stdout", ..]`.
    Terminado,
    /// wetty: socket.io (engine.io v4 over WebSocket), one terminal per connection.
    Wetty,
    /// `attachd-bench floor-server`: the latency floor, one terminal per connection.
    Floor,
}

impl Proto {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Attachd => "attachd",
            Proto::Terminado => "terminado",
            Proto::Wetty => "wetty",
            Proto::Floor => "floor",
        }
    }

    /// Whether several clients can share one terminal (observers, fan-out).
    pub fn shares_terminals(self) -> bool {
        !matches!(self, Proto::Wetty | Proto::Floor)
    }
}

/// Scenarios.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Complete attaches per second: ticket POST + upgrade + first `hello`.
    ConnectStorm(StormArgs),
    /// Keystroke round trip through the PTY (`stty raw -echo; cat`) with K observers.
    Echo(EchoArgs),
    /// One session writes B bytes; N observers check byte-exact delivery and rate.
    Fanout(FanoutArgs),
    /// Hold C idle observers for T seconds; server RSS per connection and idle CPU.
    Soak(SoakArgs),
    /// N observers of one session (possibly shared with other processes) through a flood:
    /// each must end on the driver's final screen, judged by the client's own emulator.
    CrowdFlood(CrowdFloodArgs),
    /// Turn a results file (JSON lines) into `latest.json` and `latest.md`.
    Summarize(SummarizeArgs),
    /// Keystroke round trip through a bare PTY (no network): this machine's raw PTY echo.
    PtyEcho(PtyEchoArgs),
    /// The session terminal state alone: feed rate, snapshot time and size, memory per session.
    Term(TermArgs),
    /// The session recorder alone: CPU per MB and bytes written, per chunk size.
    Recorder(RecorderArgs),
    /// Serve the latency floor: a one-thread WebSocket-to-PTY bridge (see `floor.rs`).
    FloorServer(FloorArgs),
}

/// `recorder`.
#[derive(Debug, Clone, Args)]
pub struct RecorderArgs {
    /// Megabytes of output recorded per chunk size.
    #[arg(long, default_value_t = 200)]
    pub mbytes: usize,
    /// Bytes per output chunk handed to the tap (one PTY read).
    #[arg(long, default_value_t = 16384)]
    pub piece: usize,
    /// Chunk sizes to compare, in KiB.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 1024])]
    pub chunk_kib: Vec<usize>,
}

/// `term`.
#[derive(Debug, Clone, Args)]
pub struct TermArgs {
    /// Megabytes of each input fed to measure the emulator's rate.
    #[arg(long, default_value_t = 20)]
    pub mbytes: usize,
    /// `session.history_lines`.
    #[arg(long, default_value_t = 1000)]
    pub history: usize,
    /// Snapshots built per screen size.
    #[arg(long, default_value_t = 200)]
    pub iterations: usize,
    /// Sessions held at once for the memory figure.
    #[arg(long, default_value_t = 50)]
    pub sessions: usize,
}

/// `connect-storm`.
#[derive(Debug, Clone, Args)]
pub struct StormArgs {
    /// Attaches to complete.
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    /// Attaches in flight.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Sessions to spread attaches over.
    #[arg(long, default_value_t = 1)]
    pub sessions: usize,
    /// Attach to these existing sessions (e.g. pods with the kube backend) instead of creating
    /// and deleting sessions; repeatable.
    #[arg(long = "session")]
    pub existing: Vec<String>,
}

/// The keystrokes of an echo measurement.
#[derive(Debug, Clone, Args)]
pub struct Keystrokes {
    /// Measured keystrokes.
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Keystrokes sent first and not measured.
    #[arg(long, default_value_t = 100)]
    pub warmup: usize,
    /// Pause between keystrokes in microseconds (0 = next key as soon as the echo arrives;
    /// tokio's timer rounds up to whole milliseconds).
    #[arg(long, default_value_t = 1000)]
    pub gap_us: u64,
}

/// `echo`.
#[derive(Debug, Clone, Args)]
pub struct EchoArgs {
    /// Observers attached to the same session, reading continuously.
    #[arg(long, default_value_t = 0)]
    pub observers: usize,
    /// How many keystrokes and how fast.
    #[command(flatten)]
    pub keys: Keystrokes,
    /// Observers read nothing while keystrokes are measured and everything afterwards (the
    /// server does the same fan-out; the client's own reading leaves the measurement).
    #[arg(long)]
    pub observers_read_after: bool,
    /// Dashboards open meanwhile (attachd only): event streams with thumbnails, read as they come.
    #[arg(long, default_value_t = 0)]
    pub dashboards: usize,
}

/// `pty-echo`.
#[derive(Debug, Clone, Args)]
pub struct PtyEchoArgs {
    /// How many keystrokes and how fast.
    #[command(flatten)]
    pub keys: Keystrokes,
    /// Shell started on the PTY.
    #[arg(long, default_value = "/bin/sh")]
    pub shell: String,
}

/// `fanout`.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Observers of the writing session.
    #[arg(long, default_value_t = 50)]
    pub observers: usize,
    /// Random bytes written (base64-encoded by the shell: about 4/3 of this on the wire).
    #[arg(long, default_value_t = 20_000_000)]
    pub bytes: u64,
}

/// `soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Concurrent observers to hold.
    #[arg(long, default_value_t = 2000)]
    pub connections: usize,
    /// Idle hold time, seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Observers per session (attachd's default `limits.session_participants` is 50).
    #[arg(long, default_value_t = 40)]
    pub per_session: usize,
    /// Where the connections come from.
    #[command(flatten)]
    pub sources: SourceArgs,
    /// After the hold, SIGTERM the server (`--server-pid`) instead of closing: reports how long
    /// its drain took and the close codes the connections got.
    #[arg(long)]
    pub sigterm: bool,
    /// Attaches in flight while ramping up.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// Loopback source addresses a crowd of connections is spread over.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Source addresses 127.0.0.2.. to spread connections over (0 = one per 4000 connections).
    #[arg(long, default_value_t = 0)]
    pub sources: usize,
    /// Index of the first source address (client processes running at once take disjoint
    /// ranges, so each address's ephemeral ports serve one process).
    #[arg(long, default_value_t = 0)]
    pub source_base: usize,
}

/// `crowd-flood`.
#[derive(Debug, Clone, Args)]
pub struct CrowdFloodArgs {
    /// Observers this process attaches.
    #[arg(long, default_value_t = 100)]
    pub observers: usize,
    /// An existing session to attach to (client processes share it); without it this
    /// process creates one, drives it and deletes it at the end.
    #[arg(long)]
    pub session: Option<String>,
    /// Attach the driver and run the flood (implied without `--session`).
    #[arg(long)]
    pub drive: bool,
    /// Observers the session must have (from every process) before the flood starts;
    /// default: the ones this process attached.
    #[arg(long)]
    pub expect_observers: Option<usize>,
    /// Longest wait for the expected observers, seconds; the flood then starts anyway.
    #[arg(long, default_value_t = 120)]
    pub wait_secs: u64,
    /// Bytes of flood output: a third each of `seq` lines, base64 lines and coloured numbers.
    #[arg(long, default_value_t = 4_000_000)]
    pub bytes: u64,
    /// Where the observers' connections come from.
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Attaches in flight while ramping up.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// `summarize`.
#[derive(Debug, Clone, Args)]
pub struct SummarizeArgs {
    /// Results file written by `--out`.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the JSON summary.
    #[arg(long)]
    pub json: PathBuf,
    /// Where to write the markdown report.
    #[arg(long)]
    pub md: PathBuf,
    /// Free-text machine description for the report header.
    #[arg(long, default_value = "")]
    pub machine: String,
}

/// `floor-server`.
#[derive(Debug, Clone, Args)]
pub struct FloorArgs {
    /// Address to listen on (loopback only; port 0 picks a free one and prints it).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Program each connection gets on its own PTY.
    #[arg(long, default_value = "/bin/sh")]
    pub shell: String,
}
