//! attachd-actors: the supervised actor system of attachd (connections, session hubs, the control
//! lease, limits and audit). It knows nothing about HTTP; the edge crate feeds it sockets and config.

pub mod alarm;
pub mod audit;
pub mod backend;
pub mod connection;
pub mod grid;
pub mod hub;
pub mod keepalive;
pub mod lease;
pub mod limits;
pub mod metrics;
pub mod outbound;
pub mod pace;
pub mod protocol;
pub mod recording;
pub mod redis;
mod register;
pub mod ring;
pub mod stdin_rate;
pub mod term;
pub mod time;
