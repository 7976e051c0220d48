//! API scopes (SPEC §3): the closed set a principal can hold. Configuration, the route table
//! and `Principal::require` name scopes through this enum; the strings are SPEC's.

use std::fmt;

/// One API scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `sessions:read`.
    SessionsRead,
    /// `sessions:write`.
    SessionsWrite,
    /// `attach:observe`.
    AttachObserve,
    /// `attach:drive`.
    AttachDrive,
    /// `attach:moderate`.
    AttachModerate,
    /// `audit:read`.
    AuditRead,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] = [
        Scope::SessionsRead,
        Scope::SessionsWrite,
        Scope::AttachObserve,
        Scope::AttachDrive,
        Scope::AttachModerate,
        Scope::AuditRead,
    ];

    /// The SPEC name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::SessionsRead => "sessions:read",
            Scope::SessionsWrite => "sessions:write",
            Scope::AttachObserve => "attach:observe",
            Scope::AttachDrive => "attach:drive",
            Scope::AttachModerate => "attach:moderate",
            Scope::AuditRead => "audit:read",
        }
    }

    /// The scope named `s`, if any.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Every name, comma-separated (for error messages).
    pub fn names() -> String {
        Scope::ALL.map(Scope::as_str).join(", ")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("*"), None);
        assert_eq!(Scope::parse("sessions:admin"), None);
    }
}
