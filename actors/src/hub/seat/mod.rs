//! The driver seat as one hub sees it (`Free`, `Held`, `Grace`): taking, using and leaving it as
//! pure transitions that return what the hub must do (the tick in `tick.rs`, requests in `ask.rs`).

mod ask;
#[cfg(test)]
mod fixtures;
mod machine;
mod tick;

pub use ask::{AnswerError, Ask};
pub use machine::{Seat, SeatMachine, SeatTimes};
pub use tick::{Renewal, Tick};
