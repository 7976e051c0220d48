//! Black-box tests of attachd: real processes, real sockets, real PTYs.

mod audit;
mod auth;
mod authz_matrix;
mod canary;
mod cli;
mod conformance;
mod core;
mod crowd;
mod dashboard;
mod flow;
mod handshake;
mod identity;
mod idp;
mod judge;
mod jwks;
mod kube;
mod limits;
mod listen;
mod monitoring;
mod recording;
mod redis;
mod redis_ha;
mod redis_procs;
mod snapshot;
mod support;
mod terminal;
