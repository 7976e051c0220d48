//! `attachd-bench`: a bounded, loopback-only load generator for attachd and its peers.
//! Each scenario prints one JSON line and can append it to a results file for `summarize`.

mod api;
mod cli;
mod client;
mod floor;
mod marker;
mod proto;
mod pty;
mod recorder;
mod report;
mod scenario;
mod screen;
mod stats;
mod summary;
mod sys;
mod term;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Summarize(args) = &cli.command {
        return summary::summarize(args);
    }
    if let Command::Term(args) = &cli.command {
        return term::run(args);
    }
    if let Command::Recorder(args) = &cli.command {
        return recorder::run(args);
    }
    if let Command::FloorServer(args) = &cli.command {
        return floor::serve(args);
    }
    let nofile = sys::raise_nofile_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads)
        .enable_all()
        .build()?;
    let record = rt.block_on(scenario::run(&cli, nofile))?;
    report::emit(&cli, &record)
}
