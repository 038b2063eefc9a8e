//! Error type shared by every library crate of bootflow.

/// Everything that can go wrong inside bootflow's libraries. New variants may be added, so
/// matches need a catch-all arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is missing, unknown or out of range.
    #[error("invalid config: {0}")]
    Config(String),
    /// Shapes of inputs do not fit together (described in words).
    #[error("dimension mismatch: {0}")]
    Dim(String),
    /// One size does not match what it must equal: `what` had `got`, `expected` was required.
    #[error("dimension mismatch: {what}: got {got}, expected {expected}")]
    Shape {
        /// What was measured, e.g. "coupling input rows".
        what: String,
        /// The size found.
        got: usize,
        /// The size required.
        expected: usize,
    },
    /// A computation produced NaN where a number was required.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// An error raised by a user script, already carrying `file:line:col`.
    #[error("{0}")]
    Script(String),
    /// An error reported by (or about) a plugin library.
    #[error("plugin {plugin}: {message}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// What went wrong.
        message: String,
    },
    /// A name that is not in the registry.
    #[error("unknown {kind} '{name}'{hint}")]
    Unknown {
        /// What kind of name ("target", "bijection", ...).
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The names that exist, or nothing.
        hint: String,
    },
    /// The component does not provide this operation (e.g. a target without a gradient).
    #[error("{0} is not supported")]
    Unsupported(String),
    /// File system errors.
    #[error("{context}: {source}")]
    Io {
        /// The path or action.
        context: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// An internal invariant of bootflow failed: a bug to report, never the user's input.
    #[error("internal error (a bug in bootflow, please report it): {0}")]
    Bug(String),
    /// Anything else, with a message.
    #[error("{0}")]
    Other(String),

    /// The front end asked the run to stop (Ctrl-C, SIGTERM): what was done so far is kept.
    #[error("interrupted")]
    Interrupted,
    /// A failure with what was being done when it happened: shows the context alone, and the
    /// cause as its source, so error chains read `context: cause`.
    #[error("{context}")]
    Context {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// Result with the bootflow error.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An `Unknown` error that lists the names that do exist.
    pub fn unknown<'a>(kind: &'static str, name: &str, known: impl IntoIterator<Item = &'a str>) -> Self {
        let known: Vec<&str> = known.into_iter().collect();
        let hint = if known.is_empty() { String::new() } else { format!(" (known: {})", known.join(", ")) };
        Error::Unknown { kind, name: name.to_string(), hint }
    }

    /// Wraps an I/O error with the path or action it came from.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

/// Adds what was being done to an error, as `Error::Context`.
pub trait ResultExt<T> {
    /// Wraps the error with `context`.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// Wraps the error with a context computed only on failure.
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::Context { context: context.into(), source: Box::new(e) })
    }

    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::Context { context: context().into(), source: Box::new(e) })
    }
}

/// Returns `Error::Dim` unless `got == want`.
pub fn check_dim(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want { Ok(()) } else { Err(Error::Shape { what: what.to_string(), got, expected: want }) }
}
