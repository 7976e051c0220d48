//! The session's screen for the dashboard: built by the emulator only when asked, and kept for
//! a second, so any number of viewers cost at most one thumbnail per second per session.
//!
//! Nobody asking costs nothing: the output path never touches this.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::SessionHub;
use crate::term::thumb::Thumbnail;

/// How long a built thumbnail is served before the emulator is asked again.
pub const THUMBNAIL_MAX_AGE: Duration = Duration::from_secs(1);

/// Asks for the session's visible screen; `None` if the emulator cannot answer.
#[derive(Message)]
#[rtype(result = "Option<Arc<Thumbnail>>")]
pub struct Thumb;

/// The last thumbnail and when it was built.
#[derive(Default)]
pub(super) struct ThumbCache {
    last: Option<(Instant, Arc<Thumbnail>)>,
}

impl ThumbCache {
    fn fresh(&self) -> Option<Arc<Thumbnail>> {
        self.last
            .as_ref()
            .filter(|(at, _)| at.elapsed() < THUMBNAIL_MAX_AGE)
            .map(|(_, t)| t.clone())
    }

    fn any(&self) -> Option<Arc<Thumbnail>> {
        self.last.as_ref().map(|(_, t)| t.clone())
    }
}

impl Handler<Thumb> for SessionHub {
    type Result = ResponseActFuture<Self, Option<Arc<Thumbnail>>>;

    fn handle(&mut self, _msg: Thumb, _ctx: &mut Context<Self>) -> Self::Result {
        if let Some(t) = self.thumb.fresh() {
            return Box::pin(fut::ready(Some(t)));
        }
        Box::pin(self.term.thumbnail().into_actor(self).map(|built, hub, _| {
            match built {
                Some(t) => {
                    let t = Arc::new(t);
                    hub.thumb.last = Some((Instant::now(), t.clone()));
                    Some(t)
                }
                // The emulator's question queue is full (or it is gone): the last one will do.
                None => hub.thumb.any(),
            }
        }))
    }
}
