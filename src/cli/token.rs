//! The API token of the client: read from `--token-file` or `ATTACHD_TOKEN`, held in a type
//! that never prints it (its `Debug` is redacted and it has no `Display`).

use std::path::Path;

/// Environment variable that carries the API token when `--token-file` is not given.
pub const TOKEN_ENV: &str = "ATTACHD_TOKEN";

/// An API token. Only [`ApiToken::bearer`] reveals it, to build the `Authorization` header.
#[derive(Clone)]
pub struct ApiToken(String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl ApiToken {
    /// From `file` when given, else from `ATTACHD_TOKEN`. The error names where it looked,
    /// never what it found.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        match file {
            Some(f) => {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| format!("cannot read the token file {}: {e}", f.display()))?;
                Self::parse(&text)
                    .ok_or_else(|| format!("the token file {} holds no token", f.display()))
            }
            None => std::env::var(TOKEN_ENV)
                .ok()
                .and_then(|v| Self::parse(&v))
                .ok_or_else(|| format!("no API token: set {TOKEN_ENV} or pass --token-file FILE")),
        }
    }

    /// The first non-empty line, trimmed (a file may end with a newline).
    fn parse(text: &str) -> Option<Self> {
        let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
        Some(ApiToken(line.to_string()))
    }

    /// `Bearer <token>`, for the `Authorization` header of API requests.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_trimmed_and_never_printed() {
        let t = ApiToken::parse("\n  adt_secret \nrest").unwrap();
        assert_eq!(t.bearer(), "Bearer adt_secret");
        assert!(!format!("{t:?}").contains("secret"));
        assert!(ApiToken::parse(" \n\t\n").is_none());
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = ApiToken::load(Some(Path::new("/nonexistent/tok"))).unwrap_err();
        assert!(e.contains("/nonexistent/tok"), "{e}");
    }
}
