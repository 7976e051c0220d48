//! attachd: a hardened WebSocket attach gateway for interactive terminals. This crate is the
//! edge: CLI, configuration, HTTP routes, authentication, the attach handshake and backends.

pub mod auth;
pub mod backend;
pub mod capacity;
pub mod catalog;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod error;
pub mod http;
pub mod jwks;
pub mod jwt;
pub mod listen;
pub mod recording;
pub mod redis_state;
pub mod scope;
pub mod secret;
pub mod server;
pub mod sessions;
pub mod state;
pub mod telemetry;
pub mod tickets;
pub mod ws;
