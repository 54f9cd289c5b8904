//! [`ManifestError`]: why a manifest could not be rendered, written or checked.

use std::io;
use std::path::PathBuf;

/// The error of building, writing or checking a [`Manifest`](super::Manifest).
///
/// # Examples
///
/// ```
/// use statelesse::manifest::ManifestError;
///
/// fn explain(error: &ManifestError) -> &'static str {
///     match error {
///         ManifestError::Stale { .. } => "regenerate the client",
///         ManifestError::NoEvents => "link the crate that defines the events",
///         _ => "see the message",
///     }
/// }
/// assert_eq!(explain(&ManifestError::NoEvents), "link the crate that defines the events");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Reading or writing a file failed.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file on disk is not what the manifest renders to ([`Manifest::check`](super::Manifest::check)).
    #[error(
        "`{}` is stale: {}; regenerate it (run the build, or the code that calls `Manifest::write`)",
        path.display(),
        match .line {
            Some(line) => format!("it differs from the generated output at line {line}"),
            None => "it does not exist".to_owned(),
        }
    )]
    Stale {
        /// The stale file.
        path: PathBuf,
        /// The first line that differs, 1-based; `None` when the file does not exist.
        line: Option<usize>,
    },

    /// The registry holds no event type.
    ///
    /// In a build script this means the crate that defines the events is not linked into it:
    /// name it in the build script (`use my_events as _;`).
    #[error(
        "no event type is registered: the crate that defines the events is not linked into this program; \
         reference it (e.g. `use my_events as _;` in build.rs)"
    )]
    NoEvents,

    /// Two different things would get the same name in the generated TypeScript.
    #[error(
        "two definitions would share the TypeScript name `{name}`: {first} and {second}; \
         rename one (`#[ts(rename = \"..\")]` on a type, `#[sse(name = \"..\")]` on an event)"
    )]
    NameClash {
        /// The TypeScript name.
        name: String,
        /// The first definition (a Rust type, or what the generator declares under that name).
        first: String,
        /// The second definition.
        second: String,
    },

    /// An enum stream whose `Deserialize` is not that of an externally tagged enum with one
    /// serde variant per SSE event.
    #[error(
        "enum stream `{event}` must (de)serialize as an externally tagged enum with one variant per event: {reason}"
    )]
    UnsupportedEnum {
        /// The Rust type of the enum.
        event: &'static str,
        /// What the probe found.
        reason: String,
    },

    /// A route path with a placeholder other than the event's key field.
    #[error(
        "the route path `{path}` of `{event}` has the placeholder `{{{placeholder}}}`, which is not its key field"
    )]
    UnsupportedPath {
        /// The Rust type of the event.
        event: &'static str,
        /// The path template.
        path: &'static str,
        /// The offending placeholder, without braces.
        placeholder: String,
    },

    /// A payload type that the JavaScript form cannot express (a TypeScript `enum`, from
    /// `#[ts(repr(enum))]`, needs a runtime object).
    #[error(
        "`{name}` is a TypeScript enum, which the `.js` + `.d.ts` form cannot declare; use the `.ts` form or drop `#[ts(repr(enum))]`"
    )]
    UnsupportedType {
        /// The TypeScript name of the type.
        name: String,
    },

    /// A path whose extension names no output form (`.ts`, `.d.ts`, `.js`, `.mjs` or `.json`).
    #[error("`{}` has no known extension: expected `.ts`, `.d.ts`, `.js`, `.mjs` or `.json`", path.display())]
    UnknownExtension {
        /// The path.
        path: PathBuf,
    },
}

impl ManifestError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Whether this is a [`Stale`](Self::Stale) error: the file must be regenerated.
    ///
    /// # Examples
    ///
    /// ```
    /// use statelesse::manifest::ManifestError;
    ///
    /// assert!(!ManifestError::NoEvents.is_stale());
    /// ```
    #[must_use]
    pub fn is_stale(&self) -> bool {
        matches!(self, Self::Stale { .. })
    }
}
