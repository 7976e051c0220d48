//! Black-box tests of attachd: real processes, real sockets, real PTYs.

mod auth;
mod conformance;
mod core;
mod handshake;
mod limits;
mod redis;
mod support;
