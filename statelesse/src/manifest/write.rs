//! Writing the manifest to files: the form an extension names, writing only what changed, and
//! checking that a committed file is fresh.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::Manifest;
use super::error::ManifestError;
use super::typescript;

impl Manifest {
    /// Writes the manifest to `path`, in the form its extension names; writes nothing when the
    /// file already holds that content.
    ///
    /// | extension | writes |
    /// |---|---|
    /// | `.ts` | the TypeScript module |
    /// | `.js` | the ES module and, beside it, its `.d.ts` |
    /// | `.mjs` | the ES module and, beside it, its `.d.mts` |
    /// | `.d.ts` | the declarations alone |
    /// | `.json` | the JSON manifest |
    ///
    /// Missing parent directories are created.
    ///
    /// # Errors
    ///
    /// [`ManifestError::UnknownExtension`], [`ManifestError::Io`], or a rendering error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// statelesse::manifest::Manifest::collect().write("web/src/events.ts")?;
    /// # Ok::<(), statelesse::manifest::ManifestError>(())
    /// ```
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), ManifestError> {
        for (path, content) in self.outputs(path.as_ref())? {
            write_if_changed(&path, &content)?;
        }
        Ok(())
    }

    /// Writes the TypeScript module to `path` (whatever its extension).
    ///
    /// # Errors
    ///
    /// [`ManifestError::Io`], or a rendering error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// statelesse::manifest::Manifest::collect().write_typescript("web/src/events.ts")?;
    /// # Ok::<(), statelesse::manifest::ManifestError>(())
    /// ```
    pub fn write_typescript(&self, path: impl AsRef<Path>) -> Result<(), ManifestError> {
        write_if_changed(path.as_ref(), &self.render_typescript()?)
    }

    /// Writes the ES module to `js_path` and its declarations beside it (`events.js` gets
    /// `events.d.ts`, `events.mjs` gets `events.d.mts`).
    ///
    /// # Errors
    ///
    /// [`ManifestError::Io`], or a rendering error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// statelesse::manifest::Manifest::collect().write_js_and_dts("static/events.js")?;
    /// # Ok::<(), statelesse::manifest::ManifestError>(())
    /// ```
    pub fn write_js_and_dts(&self, js_path: impl AsRef<Path>) -> Result<(), ManifestError> {
        let js_path = js_path.as_ref();
        let model = self.model()?;
        write_if_changed(js_path, &typescript::javascript(&model)?)?;
        write_if_changed(
            &declarations_path(js_path),
            &typescript::declarations(&model)?,
        )
    }

    /// Writes the JSON manifest to `path`.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Io`], or a rendering error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// statelesse::manifest::Manifest::collect().write_json("target/events.json")?;
    /// # Ok::<(), statelesse::manifest::ManifestError>(())
    /// ```
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<(), ManifestError> {
        write_if_changed(path.as_ref(), &self.render_json()?)
    }

    /// Checks that the file at `path` (and, for `.js`, its `.d.ts`) holds exactly what
    /// [`write`](Self::write) would write: for a test that fails when a committed client is stale.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Stale`] when a file differs or is missing, or an error of
    /// [`write`](Self::write).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// #[test]
    /// fn generated_client_is_fresh() {
    ///     statelesse::manifest::Manifest::collect().check("web/src/events.ts").unwrap();
    /// }
    /// ```
    pub fn check(&self, path: impl AsRef<Path>) -> Result<(), ManifestError> {
        for (path, expected) in self.outputs(path.as_ref())? {
            let actual = match fs::read_to_string(&path) {
                Ok(actual) => actual,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return Err(ManifestError::Stale { path, line: None });
                }
                Err(error) => return Err(ManifestError::io("read", path, error)),
            };
            if let Some(line) = first_difference(&actual, &expected) {
                return Err(ManifestError::Stale {
                    path,
                    line: Some(line),
                });
            }
        }
        Ok(())
    }

    /// The files `write(path)` writes, with their content.
    fn outputs(&self, path: &Path) -> Result<Vec<(PathBuf, String)>, ManifestError> {
        let lower = |part: Option<&OsStr>| {
            part.and_then(|part| part.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        let extension = lower(path.extension());
        let declarations = lower(
            path.file_stem()
                .and_then(|stem| Path::new(stem).extension()),
        ) == "d";
        match extension.as_str() {
            "ts" | "mts" if declarations => {
                Ok(vec![(path.to_owned(), self.render_declarations()?)])
            }
            "ts" | "mts" => Ok(vec![(path.to_owned(), self.render_typescript()?)]),
            "js" | "mjs" => {
                let model = self.model()?;
                Ok(vec![
                    (path.to_owned(), typescript::javascript(&model)?),
                    (declarations_path(path), typescript::declarations(&model)?),
                ])
            }
            "json" => Ok(vec![(path.to_owned(), self.render_json()?)]),
            _ => Err(ManifestError::UnknownExtension {
                path: path.to_owned(),
            }),
        }
    }
}

/// `events.js` → `events.d.ts`, `events.mjs` → `events.d.mts`.
fn declarations_path(js_path: &Path) -> PathBuf {
    let module = js_path
        .extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| extension.eq_ignore_ascii_case("mjs"));
    let stem = js_path.file_stem().unwrap_or_default().to_string_lossy();
    let extension = if module { "d.mts" } else { "d.ts" };
    js_path.with_file_name(format!("{stem}.{extension}"))
}

fn write_if_changed(path: &Path, content: &str) -> Result<(), ManifestError> {
    if fs::read(path).is_ok_and(|existing| existing == content.as_bytes()) {
        return Ok(());
    }
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::create_dir_all(parent).map_err(|error| ManifestError::io("write", parent, error))?;
    }
    fs::write(path, content).map_err(|error| ManifestError::io("write", path, error))
}

/// The 1-based number of the first line where `actual` and `expected` differ.
fn first_difference(actual: &str, expected: &str) -> Option<usize> {
    if actual == expected {
        return None;
    }
    let mut actual_lines = actual.split('\n');
    let mut expected_lines = expected.split('\n');
    let mut line = 1;
    loop {
        match (actual_lines.next(), expected_lines.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            _ => return Some(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_is_one_based() {
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
        assert_eq!(first_difference("a\nb\n", "a\nc\n"), Some(2));
        assert_eq!(first_difference("a\n", "a\nb\n"), Some(2));
        assert_eq!(first_difference("x", "y"), Some(1));
    }

    #[test]
    fn declarations_sit_beside_the_module() {
        assert_eq!(
            declarations_path(Path::new("web/events.js")),
            Path::new("web/events.d.ts")
        );
        assert_eq!(
            declarations_path(Path::new("events.mjs")),
            Path::new("events.d.mts")
        );
    }
}
