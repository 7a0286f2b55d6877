//! The words every reader of results shares: verdict kinds, and the orders strategies, hazard
//! cases and builds are shown in. The report, the docs tables and the console tables all sort
//! and classify through these, so they cannot disagree.

use crate::environment::InterpreterBuild;
use crate::record::Verdict;

/// The strategies in the order the toolkit presents them: the baseline first, then the designs
/// as registered. Strategies not listed (new proposals) follow, alphabetically.
pub const STRATEGY_ORDER: &[&str] = &["unchecked", "pyo3", "tagged", "scoped", "branded", "affine"];

/// The strategy every ratio is taken against.
pub const BASELINE: &str = "unchecked";

/// The bench operation whose "strategies" are CPython reference calls (raw C-API calls measured
/// beside the strategies), not strategies.
pub const REFERENCE: &str = "reference";

/// The kind of a verdict, without its text: what observed and declared verdicts are compared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VerdictKind {
    /// The misuse does not compile.
    CompileError,
    /// A clear runtime error.
    RuntimeError,
    /// Not caught.
    Undetected,
    /// The hazard cannot arise.
    NotApplicable,
}

impl Verdict {
    /// This verdict's kind.
    pub fn kind(&self) -> VerdictKind {
        match self {
            Verdict::CompileError { .. } => VerdictKind::CompileError,
            Verdict::RuntimeError { .. } => VerdictKind::RuntimeError,
            Verdict::Undetected { .. } => VerdictKind::Undetected,
            Verdict::NotApplicable { .. } => VerdictKind::NotApplicable,
        }
    }

    /// The verdict's text: the compile-fail case, the error message, what was seen, or why not.
    pub fn text(&self) -> &str {
        match self {
            Verdict::CompileError { case } => case,
            Verdict::RuntimeError { message } => message,
            Verdict::Undetected { how } => how,
            Verdict::NotApplicable { why } => why,
        }
    }
}

/// Sort key of a strategy: [`STRATEGY_ORDER`], then others alphabetically.
pub fn strategy_rank(name: &str) -> (usize, String) {
    let i = STRATEGY_ORDER.iter().position(|s| *s == name).unwrap_or(STRATEGY_ORDER.len());
    (i, name.to_string())
}

/// The hazard number of a case ID (`H12.once` -> 12; not a case ID -> `u32::MAX`). Sorting by it
/// alone, stably, keeps each hazard's forms in the order the suite ran them.
pub fn hazard_number(id: &str) -> u32 {
    id.trim_start_matches('H').split('.').next().and_then(|n| n.parse().ok()).unwrap_or(u32::MAX)
}

/// Catalogue order of case IDs with their forms: `H2` < `H2.kept` < `H10`.
pub fn case_rank(id: &str) -> (u32, String) {
    (hazard_number(id), id.split_once('.').map_or("", |(_, form)| form).to_string())
}

/// Sort key of a build: plain builds before sanitizer and debug variants, then by name (`3.13`,
/// `3.13t`, `3.13-asan`, `3.13-debug`).
pub fn build_rank(b: &InterpreterBuild) -> (bool, String) {
    (b.variant.is_some(), b.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_sort_in_catalogue_order() {
        let mut ids = vec!["H10", "H2.kept", "H1", "H2", "H12", "x"];
        ids.sort_by_key(|h| case_rank(h));
        assert_eq!(ids, vec!["H1", "H2", "H2.kept", "H10", "H12", "x"]);
        let mut forms = vec!["H2.unattached", "H1", "H2.kept"];
        forms.sort_by_key(|h| hazard_number(h));
        assert_eq!(forms, vec!["H1", "H2.unattached", "H2.kept"], "a stable sort keeps run order");
    }

    #[test]
    fn strategies_sort_baseline_first_then_new_ones_alphabetically() {
        let mut s = vec!["zeta", "affine", "unchecked", "alpha", "tagged"];
        s.sort_by_key(|n| strategy_rank(n));
        assert_eq!(s, vec!["unchecked", "tagged", "affine", "alpha", "zeta"]);
        assert_eq!(STRATEGY_ORDER[0], BASELINE);
    }

    #[test]
    fn verdicts_have_a_kind_and_a_text() {
        let v = Verdict::Undetected { how: "crash".into() };
        assert_eq!((v.kind(), v.text()), (VerdictKind::Undetected, "crash"));
        assert!(VerdictKind::CompileError < VerdictKind::NotApplicable);
    }
}
