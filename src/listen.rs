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
    /// `server.listen`.
    pub api: TcpListener,
    /// `server.admin_listen`.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds `listen` (API) and `admin` (metrics, health), API first.
    pub fn bind(listen: SocketAddr, admin: SocketAddr) -> Result<Self, BindError> {
        Ok(Listeners {
            api: bind(listen)?,
            admin: bind(admin)?,
        })
    }

    /// Where the API listens (the real port when `:0` was asked for).
    pub fn api_addr(&self) -> SocketAddr {
        self.api
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the admin listener listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("a bound listener has an address")
    }
}

/// Binds `addr` with address reuse and attachd's backlog.
fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    bind_socket(addr).map_err(|e| BindError {
        addr: addr.to_string(),
        reason: e.to_string(),
    })
}

fn bind_socket(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_reports_the_bound_ports() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let l = Listeners::bind(any, any).unwrap();
        let (api, admin) = (l.api_addr(), l.admin_addr());
        assert_ne!(api.port(), 0);
        assert_ne!(admin.port(), 0);
        assert_ne!(api, admin);
    }

    #[test]
    fn a_busy_port_names_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let e = Listeners::bind(addr, "127.0.0.1:0".parse().unwrap()).unwrap_err();
        assert_eq!(e.addr, addr.to_string());
        assert!(e
            .to_string()
            .starts_with(&format!("cannot listen on {addr}: ")));
    }
}
