//! attachd-actors: the supervised actor system of attachd (connections, session hubs, the control
//! lease, limits and audit). It knows nothing about HTTP; the edge crate feeds it sockets and config.

pub mod backend;
