//! [`Secret`]: a string that never shows itself in `Debug`, `Display` or serialised output.

use serde::Deserialize;

/// A secret string (client secrets, refresh tokens, issued access tokens).
///
/// `Debug` prints `"***"` (or `""` when empty), there is no `Display` and no `Serialize`, so a
/// secret cannot reach a log line, an error message or a JSON document by accident. The value
/// is read with [`Secret::expose`] at the one place it is injected.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value. Call it only where the value leaves the process (a header, a form).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}
