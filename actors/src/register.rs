//! Registering a Prometheus metric in the default registry, shared by every module that owns
//! metrics (`metrics`, `recording`): a failed registration is a programming error.

/// The registered metric; registration fails only for a duplicate or malformed name.
pub(crate) fn must<T>(r: prometheus::Result<T>, name: &str) -> T {
    match r {
        Ok(v) => v,
        // Registration fails only for a duplicate or malformed name: a programming error.
        Err(e) => panic!("metric {name} cannot be registered: {e}"),
    }
}
