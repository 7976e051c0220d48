//! Session backends: where the terminal actually runs. `local` spawns a PTY on this host;
//! `kube` attaches to pods through the Kubernetes API.

pub mod kube;
pub mod local;
