//! Black-box tests of attachd: real processes, real sockets, real PTYs.

mod auth;
mod core;
mod handshake;
mod limits;
mod support;
