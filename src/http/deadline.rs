//! The request deadline past the head: a body must arrive within `server.handshake_timeout` of
//! its head (else 408), and a request answered before its body was read closes its connection.
//!
//! actix-http's own timer covers the request head only, and after answering a request whose
//! chunked body was not read it keeps the connection to drain that body, with no deadline. Here
//! the body is wrapped in a stream that fails at the deadline, and while the body is unfinished
//! the original payload is kept alive by the response body: actix-http then sees unread input
//! when the response is written and closes the connection after it instead of draining.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use actix_web::HttpMessage;
use futures_util::{Stream, StreamExt};

use crate::state::AppState;

/// A request body shared with the middleware, failing once the deadline has passed.
struct Deadlined {
    inner: Rc<RefCell<Payload>>,
    finished: Rc<Cell<bool>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Stream for Deadlined {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished.get() {
            return Poll::Ready(None);
        }
        match this.inner.borrow_mut().poll_next_unpin(cx) {
            Poll::Ready(None) => {
                this.finished.set(true);
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(PayloadError::Io(timed_out())))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The error a body gets at its deadline.
fn timed_out() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body did not arrive in time",
    )
}

/// Whether a body read failed at its deadline.
pub fn is_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// A response body that keeps the unfinished request payload alive until it is sent.
struct Holding {
    body: BoxBody,
    _payload: Rc<RefCell<Payload>>,
}

impl MessageBody for Holding {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The middleware: bounds the body in time and closes connections whose body was not read.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let timeout = req
        .app_data::<Data<AppState>>()
        .map_or(Duration::from_secs(5), |st| {
            st.settings.server.handshake_timeout
        });
    let inner = Rc::new(RefCell::new(payload));
    let finished = Rc::new(Cell::new(false));
    let body = Deadlined {
        inner: inner.clone(),
        finished: finished.clone(),
        sleep: Box::pin(tokio::time::sleep(timeout)),
    };
    req.set_payload(Payload::from(
        Box::pin(body) as actix_http::BoxedPayloadStream
    ));
    let res = next.call(req).await?.map_into_boxed_body();
    if finished.get() {
        return Ok(res);
    }
    Ok(res
        .map_body(|_, body| Holding {
            body,
            _payload: inner,
        })
        .map_into_boxed_body())
}
