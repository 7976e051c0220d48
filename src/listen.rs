//! The gateway's listening sockets, bound before anything else is opened (audit log, Redis,
//! Kubernetes), so a busy port fails at once with one message; `:0` binds report their ports.

use std::net::{SocketAddr, TcpListener};

/// Pending connections a listener queues (actix-web's default).
const BACKLOG: i32 = 1024;

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {reason}")]
pub struct BindError {
    /// The configured address.
    pub addr: String,
    /// The OS error.
    pub reason: String,
}

/// The bound API and admin listeners.
#[derive(Debug)]
pub struct Listeners {
    /// `server.listen`: every address it resolves to.
    pub api: Vec<TcpListener>,
    /// `server.admin_listen`.
    pub admin: Vec<TcpListener>,
}

impl Listeners {
    /// Binds `listen` (API) and `admin` (metrics, health), API first.
    pub fn bind(listen: &str, admin: &str) -> Result<Self, BindError> {
        Ok(Listeners {
            api: bind_all(listen)?,
            admin: bind_all(admin)?,
        })
    }

    /// Where the API listens (the real ports when `:0` was asked for).
    pub fn api_addrs(&self) -> Vec<SocketAddr> {
        addrs(&self.api)
    }

    /// Where the admin listener listens.
    pub fn admin_addrs(&self) -> Vec<SocketAddr> {
        addrs(&self.admin)
    }
}

fn addrs(ls: &[TcpListener]) -> Vec<SocketAddr> {
    ls.iter().filter_map(|l| l.local_addr().ok()).collect()
}

/// Binds every address `listen` resolves to, with address reuse and attachd's backlog.
fn bind_all(listen: &str) -> Result<Vec<TcpListener>, BindError> {
    bind_each(listen).map_err(|e| BindError {
        addr: listen.to_string(),
        reason: e.to_string(),
    })
}

fn bind_each(listen: &str) -> std::io::Result<Vec<TcpListener>> {
    use socket2::{Domain, Socket, Type};
    use std::net::ToSocketAddrs;
    let mut out = Vec::new();
    for addr in listen.to_socket_addrs()? {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        socket.set_nonblocking(true)?;
        out.push(socket.into());
    }
    if out.is_empty() {
        return Err(std::io::Error::other("resolves to no address"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_reports_the_bound_ports() {
        let l = Listeners::bind("127.0.0.1:0", "127.0.0.1:0").unwrap();
        let (api, admin) = (l.api_addrs(), l.admin_addrs());
        assert_eq!(api.len(), 1);
        assert_ne!(api[0].port(), 0);
        assert_ne!(admin[0].port(), 0);
        assert_ne!(api[0], admin[0]);
    }

    #[test]
    fn a_busy_port_names_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let e = Listeners::bind(&addr, "127.0.0.1:0").unwrap_err();
        assert_eq!(e.addr, addr);
        assert!(e
            .to_string()
            .starts_with(&format!("cannot listen on {addr}: ")));
    }
}
