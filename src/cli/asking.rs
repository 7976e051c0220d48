//! Requests for control as the client sees them: those addressed to us as the holder (one
//! prompt at a time, answered with `~y`/`~n`) and our own (`~r`). Pure: each step says what to show and send.

use std::collections::VecDeque;

use attachd_actors::protocol::{ClientMessage, ControlAction, HolderView, RequestOutcome, Role};

use crate::cli::escape::{Escape, HELP};

/// What one step amounts to: lines for the person (notices), and a message for the server.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// One line each, in order.
    pub notices: Vec<String>,
    /// `control` to send.
    pub send: Option<ClientMessage>,
}

impl Step {
    fn say(line: impl Into<String>) -> Step {
        Step {
            notices: vec![line.into()],
            send: None,
        }
    }
}

/// The requests of one connection.
#[derive(Debug, Default)]
pub struct Asking {
    /// Addressed to us as the holder, oldest first; `~y`/`~n` answer the first.
    waiting: VecDeque<HolderView>,
    /// Our own request waits for the holder's answer.
    asked: bool,
}

/// How a person is named: display name, else subject.
pub fn who(name: Option<&str>, subject: Option<&str>) -> String {
    match (name, subject) {
        (Some(n), _) | (None, Some(n)) => n.to_string(),
        (None, None) => "another driver".into(),
    }
}

fn named(v: &HolderView) -> String {
    who(v.name.as_deref(), Some(&v.subject))
}

fn prompt(v: &HolderView) -> String {
    format!(
        "{} asks for control: ~y gives it, ~n denies (unanswered, it expires)",
        named(v)
    )
}

impl Asking {
    /// Whether a request waits for our answer (`~y` and `~n` are armed).
    pub fn answering(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Control changed hands: every pending request ended with it.
    pub fn control_changed(&mut self) {
        self.waiting.clear();
        self.asked = false;
    }

    /// A `control_request` reached connection `me`, which holds control when `you`;
    /// `holder` names the holder.
    pub fn requested(
        &mut self,
        from: HolderView,
        me: &str,
        you: bool,
        holder: Option<&str>,
    ) -> Step {
        if from.connection_id == me {
            self.asked = true;
            let holder = holder.unwrap_or("the holder");
            return Step::say(format!(
                "asked {holder} for control; unanswered, the request expires"
            ));
        }
        if !you
            || self
                .waiting
                .iter()
                .any(|r| r.connection_id == from.connection_id)
        {
            return Step::default();
        }
        let line = if self.waiting.is_empty() {
            prompt(&from)
        } else {
            format!("{} asks for control too: answered in turn", named(&from))
        };
        self.waiting.push_back(from);
        Step::say(line)
    }

    /// A `control_request_ended` reached connection `me`.
    pub fn ended(&mut self, from: &HolderView, outcome: RequestOutcome, me: &str) -> Step {
        let how = match outcome {
            RequestOutcome::Denied => "denied",
            RequestOutcome::Expired => "not answered in time",
            RequestOutcome::Withdrawn => "withdrawn",
        };
        if from.connection_id == me {
            self.asked = false;
            return Step::say(format!("your request for control was {how}"));
        }
        let was_first = self
            .waiting
            .front()
            .is_some_and(|r| r.connection_id == from.connection_id);
        self.waiting
            .retain(|r| r.connection_id != from.connection_id);
        let mut step = Step::say(format!(
            "{}'s request for control ended: {how}",
            named(from)
        ));
        if was_first {
            step.notices.extend(self.waiting.front().map(prompt));
        }
        step
    }

    /// An escape other than `~.` typed by a `role` client (holding control when `you`).
    pub fn escape(&mut self, e: Escape, role: Role, you: bool) -> Step {
        match e {
            Escape::Request if role == Role::Observer => {
                Step::say("observers cannot ask for control (attach without --observe)")
            }
            Escape::Request if you => Step::say("you hold control already"),
            Escape::Request if self.asked => Step::say("your request for control is still waiting"),
            Escape::Request => Step {
                notices: vec![],
                send: Some(ClientMessage::Control {
                    action: ControlAction::Request,
                    to: None,
                }),
            },
            Escape::Grant | Escape::Deny => {
                let Some(r) = self.waiting.pop_front() else {
                    return Step::say("no request for control is waiting");
                };
                let action = if e == Escape::Grant {
                    ControlAction::Grant
                } else {
                    ControlAction::Deny
                };
                Step {
                    notices: self.waiting.front().map(prompt).into_iter().collect(),
                    send: Some(ClientMessage::Control {
                        action,
                        to: Some(r.connection_id),
                    }),
                }
            }
            Escape::Help => Step::say(HELP),
            Escape::Detach => Step::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, subject: &str, name: Option<&str>) -> HolderView {
        HolderView {
            connection_id: id.into(),
            subject: subject.into(),
            name: name.map(Into::into),
        }
    }

    fn answer(action: ControlAction, to: &str) -> Option<ClientMessage> {
        Some(ClientMessage::Control {
            action,
            to: Some(to.into()),
        })
    }

    #[test]
    fn the_holder_answers_requests_in_turn() {
        let mut a = Asking::default();
        let bob = view("c-bob", "bob", Some("Bob B"));
        let carol = view("c-carol", "carol", None);
        let s = a.requested(bob.clone(), "c-me", true, None);
        assert_eq!(
            s.notices,
            vec!["Bob B asks for control: ~y gives it, ~n denies (unanswered, it expires)"]
        );
        assert!(a.answering());
        // The same request twice is one; a second requester waits its turn.
        assert_eq!(
            a.requested(bob.clone(), "c-me", true, None),
            Step::default()
        );
        let s = a.requested(carol.clone(), "c-me", true, None);
        assert_eq!(
            s.notices,
            vec!["carol asks for control too: answered in turn"]
        );

        let s = a.escape(Escape::Deny, Role::Driver, true);
        assert_eq!(s.send, answer(ControlAction::Deny, "c-bob"));
        assert!(
            s.notices[0].starts_with("carol asks for control: ~y"),
            "{s:?}"
        );
        // The server's word on the denial names it; carol is still first.
        let s = a.ended(&bob, RequestOutcome::Denied, "c-me");
        assert_eq!(s.notices, vec!["Bob B's request for control ended: denied"]);
        let s = a.escape(Escape::Grant, Role::Driver, true);
        assert_eq!(s.send, answer(ControlAction::Grant, "c-carol"));
        assert!(!a.answering());
        let s = a.escape(Escape::Grant, Role::Driver, true);
        assert_eq!(
            (s.send, s.notices),
            (None, vec!["no request for control is waiting".to_string()])
        );
    }

    #[test]
    fn an_expired_first_request_prompts_the_next_and_a_control_change_ends_all() {
        let mut a = Asking::default();
        let bob = view("c-bob", "bob", None);
        a.requested(bob.clone(), "c-me", true, None);
        a.requested(view("c-carol", "carol", None), "c-me", true, None);
        let s = a.ended(&bob, RequestOutcome::Expired, "c-me");
        assert_eq!(s.notices.len(), 2, "{s:?}");
        assert!(s.notices[1].starts_with("carol asks for control: ~y"));
        a.control_changed();
        assert!(!a.answering());
        // Not holding control, a request addressed to the old holder is not ours to answer.
        assert_eq!(a.requested(bob, "c-me", false, None), Step::default());
        assert!(!a.answering());
    }

    #[test]
    fn our_own_request_is_sent_once_and_its_end_is_told() {
        let mut a = Asking::default();
        let s = a.escape(Escape::Request, Role::Driver, false);
        assert_eq!(
            s.send,
            Some(ClientMessage::Control {
                action: ControlAction::Request,
                to: None
            })
        );
        let me = view("c-me", "bob", None);
        let s = a.requested(me.clone(), "c-me", false, Some("alice"));
        assert_eq!(
            s.notices,
            vec!["asked alice for control; unanswered, the request expires"]
        );
        assert!(!a.answering(), "our own request is not ours to answer");
        assert_eq!(a.escape(Escape::Request, Role::Driver, false).send, None);
        let s = a.ended(&me, RequestOutcome::Denied, "c-me");
        assert_eq!(s.notices, vec!["your request for control was denied"]);
        assert!(a
            .escape(Escape::Request, Role::Driver, false)
            .send
            .is_some());
        assert_eq!(a.escape(Escape::Request, Role::Driver, true).send, None);
        let s = a.escape(Escape::Request, Role::Observer, false);
        assert!(s.send.is_none() && s.notices[0].contains("observers"));
    }
}
