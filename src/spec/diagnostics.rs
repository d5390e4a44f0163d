//! Problems found in a spec, each tied to the field and the place it was written.

use std::fmt;

use super::source::{FieldPath, Origin};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem with a spec: which field, where it was written, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub path: FieldPath,
    pub origin: Origin,
    pub message: String,
    pub hint: Option<String>,
    /// Another field the problem involves; it locates the diagnostic when `path` itself was
    /// not written (a default), so the error points at what the user did write.
    pub related: Option<FieldPath>,
    /// Point at the field's key rather than its value (for fields that should not be there).
    pub at_key: bool,
}

impl Diagnostic {
    /// An error about `path`; its origin is filled in when diagnostics are located.
    pub fn error(path: FieldPath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            path,
            origin: Origin::Default,
            message: message.into(),
            hint: None,
            related: None,
            at_key: false,
        }
    }

    pub fn warning(path: FieldPath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(path, message)
        }
    }

    pub fn at_key(mut self) -> Self {
        self.at_key = true;
        self
    }

    pub fn related_to(mut self, path: FieldPath) -> Self {
        self.related = Some(path);
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = if self.path.0.is_empty() {
            "(document)".to_string()
        } else {
            self.path.to_string()
        };
        write!(f, "{}: {}: {}", self.origin, field, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n    hint: {hint}")?;
        }
        Ok(())
    }
}

/// All errors of one spec, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSpec {
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        write!(
            f,
            "the cluster spec has {count} error{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            write!(f, "\n  {}", error.to_string().replace('\n', "\n  "))?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidSpec {}

/// The closest candidate to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lowered = word.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            (
                strsim::levenshtein(&lowered, &candidate.to_lowercase()),
                candidate,
            )
        })
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["zones", "vpcCidr", "topology"];
        assert_eq!(did_you_mean("zonez", fields), Some("zones"));
        assert_eq!(did_you_mean("vpcCIDR", fields), Some("vpcCidr"));
        assert_eq!(did_you_mean("topolgy", fields), Some("topology"));
        assert_eq!(did_you_mean("banana", fields), None);
    }
}
