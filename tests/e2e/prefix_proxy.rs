//! A reverse proxy (hyper) that serves attachd under a path prefix, as nginx's
//! `location /attachd/ { proxy_pass http://attachd/; }` does: HTTP/1.1 and WebSocket upgrades.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Body = BoxBody<Bytes, hyper::Error>;

/// The proxy: requests under `prefix` go to the upstream with the prefix cut off; anything
/// else is answered 404 by the proxy itself and counted as a stray path.
pub struct PrefixProxy {
    pub port: u16,
    stray: Arc<Mutex<Vec<String>>>,
    forwarded: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PrefixProxy {
    /// Serves `prefix` (such as `/attachd`) from `127.0.0.1:upstream`.
    pub async fn start(upstream: u16, prefix: &'static str) -> PrefixProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let stray: Arc<Mutex<Vec<String>>> = Arc::default();
        let forwarded: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, f) = (stray.clone(), forwarded.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (s, f) = (s.clone(), f.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        forward(req, upstream, prefix, s.clone(), f.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        PrefixProxy {
            port,
            stray,
            forwarded,
            task,
        }
    }

    /// Paths that were not under the prefix.
    pub fn stray(&self) -> Vec<String> {
        self.stray.lock().unwrap().clone()
    }

    /// Upstream paths forwarded (prefix removed), in order.
    pub fn forwarded(&self) -> Vec<String> {
        self.forwarded.lock().unwrap().clone()
    }
}

impl Drop for PrefixProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never: Infallible| -> hyper::Error { match never {} })
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp
}

async fn forward(
    mut req: Request<Incoming>,
    upstream: u16,
    prefix: &'static str,
    stray: Arc<Mutex<Vec<String>>>,
    forwarded: Arc<Mutex<Vec<String>>>,
) -> Result<Response<Body>, Infallible> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let rest = match path.strip_prefix(prefix) {
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => {
            stray.lock().unwrap().push(path);
            return Ok(plain(StatusCode::NOT_FOUND, "not under the proxy's prefix"));
        }
    };
    forwarded.lock().unwrap().push(rest.clone());
    *req.uri_mut() = rest.parse().expect("a path is a URI");
    let downstream = hyper::upgrade::on(&mut req);
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return Ok(plain(StatusCode::BAD_GATEWAY, "upstream unreachable"));
    };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await
    else {
        return Ok(plain(StatusCode::BAD_GATEWAY, "upstream handshake failed"));
    };
    tokio::spawn(conn.with_upgrades());
    let mut resp = match sender.send_request(req).await {
        Ok(resp) => resp,
        Err(_) => return Ok(plain(StatusCode::BAD_GATEWAY, "upstream request failed")),
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            if let (Ok(down), Ok(up)) = tokio::join!(downstream, upstream_side) {
                let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            }
        });
    }
    Ok(resp.map(BodyExt::boxed))
}
