//! Output coalescing: backend output chunks already waiting in the channel are merged into one
//! (up to `MAX_COALESCED`), so bulk output makes fewer, larger sends with no added latency.

use tokio::sync::mpsc;

use crate::backend::BackendEvent;

/// Largest output chunk the hub builds by merging chunks that are already waiting.
pub const MAX_COALESCED: usize = 64 * 1024;

/// Backend events, with output chunks that are already queued merged into one (up to
/// `MAX_COALESCED`): fewer, larger sends under bulk output, and no added latency.
pub(super) fn coalesced(
    mut rx: mpsc::Receiver<BackendEvent>,
) -> impl futures_util::Stream<Item = BackendEvent> {
    use std::task::Poll;
    let mut pending: Option<BackendEvent> = None;
    futures_util::stream::poll_fn(move |cx| {
        let first = match pending.take() {
            Some(ev) => ev,
            None => match rx.poll_recv(cx) {
                Poll::Ready(Some(ev)) => ev,
                other => return other,
            },
        };
        let BackendEvent::Output(head) = first else {
            return Poll::Ready(Some(first));
        };
        let mut merged: Option<bytes::BytesMut> = None;
        let mut len = head.len();
        while len < MAX_COALESCED {
            match rx.poll_recv(cx) {
                Poll::Ready(Some(BackendEvent::Output(more))) => {
                    len += more.len();
                    merged
                        .get_or_insert_with(|| bytes::BytesMut::from(&head[..]))
                        .extend_from_slice(&more);
                }
                Poll::Ready(Some(other)) => {
                    pending = Some(other);
                    break;
                }
                _ => break,
            }
        }
        Poll::Ready(Some(BackendEvent::Output(
            merged.map_or(head, bytes::BytesMut::freeze),
        )))
    })
}
