//! The generated regions of the docs and RFCs (`docs/*.md`, `RFCs/*.md`): evaluation tables and
//! example code, each between a start and an end marker on lines of their own.
//!
//! ```text
//! <!-- eval:NAME:start KIND key=value ... -->
//! (generated from docs/data/*.json; see tables.rs for the kinds and their arguments)
//! <!-- eval:NAME:end -->
//!
//! <!-- example:FILE:start -->
//! (a copy of examples/FILE.rs, which tests/docs_examples.rs runs)
//! <!-- example:FILE:end -->
//! ```
//!
//! `NAME` is unique within its page and says what the table is for (`bind-cost`); it names the
//! region in staleness reports. Markers inside fenced code blocks are text, not markers (so a
//! page can show how to write one). `cargo xtask docs` rewrites every region;
//! `cargo xtask docs --check` and the test below fail when a committed region differs from what
//! the committed snapshot and examples generate.

use std::fs;
use std::path::{Path, PathBuf};

use super::snapshot::Snapshot;
use super::tables::{self, Context, Spec};

/// The directories whose `*.md` pages may hold generated regions (`""`: the workspace root, for
/// README.md).
pub const PAGE_DIRS: &[&str] = &["", "docs", "RFCs"];

/// What fills a region.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    /// An evaluation table.
    Table(Spec),
    /// The source of `examples/<name>.rs`.
    Example,
}

/// One region of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Region {
    /// `eval` or `example`.
    prefix: &'static str,
    /// The region's name.
    name: String,
    /// What fills it.
    body: Body,
    /// Byte offset just after the start marker's line.
    content_start: usize,
    /// Byte offset of the end marker's line.
    content_end: usize,
}

impl Region {
    /// `eval:NAME`, as reports name it.
    fn id(&self) -> String {
        format!("{}:{}", self.prefix, self.name)
    }
}

/// A marker line: prefix, name, and for a start marker what follows `:start`.
#[derive(Debug, PartialEq, Eq)]
enum Marker<'a> {
    Start(&'static str, &'a str, &'a str),
    End(&'static str, &'a str),
}

/// Parses a line as a region marker.
fn marker(line: &str) -> Option<Marker<'_>> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let (prefix, rest) = ["eval", "example"].into_iter().find_map(|p| {
        inner
            .strip_prefix(p)
            .and_then(|r| r.strip_prefix(':'))
            .map(|r| (p, r))
    })?;
    let (name, rest) = rest.split_once(':')?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return None;
    }
    if rest == "end" {
        return Some(Marker::End(prefix, name));
    }
    let args = rest.strip_prefix("start")?;
    if !(args.is_empty() || args.starts_with(char::is_whitespace)) {
        return None;
    }
    Some(Marker::Start(prefix, name, args.trim()))
}

/// Every region of `page`, in order.
fn regions(page: &str) -> Result<Vec<Region>, String> {
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in page.split_inclusive('\n') {
        lines.push((offset, line));
        offset += line.len();
    }
    let mut found: Vec<Region> = Vec::new();
    let mut fence: Option<&str> = None;
    let mut i = 0;
    while i < lines.len() {
        let (_, line) = lines[i];
        let trimmed = line.trim_start();
        if let Some(open) = fence {
            if trimmed.starts_with(open) {
                fence = None;
            }
            i += 1;
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            i += 1;
            continue;
        }
        match marker(line) {
            Some(Marker::Start(prefix, name, args)) => {
                let body = match prefix {
                    "eval" => Body::Table(
                        Spec::parse(args).map_err(|e| format!("`{prefix}:{name}`: {e}"))?,
                    ),
                    _ if args.is_empty() => Body::Example,
                    _ => {
                        return Err(format!(
                            "`{prefix}:{name}`: an example marker takes no arguments"
                        ))
                    }
                };
                let end = (i + 1..lines.len())
                    .find(|&j| marker(lines[j].1) == Some(Marker::End(prefix, name)))
                    .ok_or_else(|| {
                        format!(
                            "`{prefix}:{name}` has no end marker `<!-- {prefix}:{name}:end -->`"
                        )
                    })?;
                let region = Region {
                    prefix,
                    name: name.to_string(),
                    body,
                    content_start: lines[i].0 + line.len(),
                    content_end: lines[end].0,
                };
                if found.iter().any(|r| r.id() == region.id()) {
                    return Err(format!("`{}` appears twice", region.id()));
                }
                found.push(region);
                i = end + 1;
            }
            Some(Marker::End(prefix, name)) => {
                return Err(format!("`{prefix}:{name}` ends without a start marker"));
            }
            None => i += 1,
        }
    }
    Ok(found)
}

/// The content a region should have.
fn content(region: &Region, cx: &Context<'_>) -> Result<String, String> {
    match &region.body {
        Body::Table(spec) => {
            let blocks = tables::render(spec, cx).map_err(|e| format!("`{}`: {e}", region.id()))?;
            let table = crate::render::markdown(&blocks);
            Ok(format!(
                "<!-- Generated by `cargo xtask docs` from the snapshot in docs/data/: change the \
                 start marker's arguments, not this table. -->\n\n{table}\n"
            ))
        }
        Body::Example => {
            let file = format!("examples/{}.rs", region.name);
            let mut source = fs::read_to_string(cx.root.join(&file))
                .map_err(|e| format!("`{}`: cannot read {file}: {e}", region.id()))?;
            if !source.ends_with('\n') {
                source.push('\n');
            }
            Ok(format!(
                "<!-- Copied by `cargo xtask docs` from {file}, which `cargo test` runs \
                 (tests/docs_examples.rs): edit that file, not this copy. -->\n\n```rust\n{source}```\n\n"
            ))
        }
    }
}

/// `page` with every region regenerated, and the IDs of the regions that changed.
pub fn regenerate(page: &str, cx: &Context<'_>) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(page.len());
    let mut changed = Vec::new();
    let mut at = 0;
    for region in regions(page)? {
        let new = content(&region, cx)?;
        if page[region.content_start..region.content_end] != new {
            changed.push(region.id());
        }
        out.push_str(&page[at..region.content_start]);
        out.push_str(&new);
        at = region.content_end;
    }
    out.push_str(&page[at..]);
    Ok((out, changed))
}

/// The pages that may hold regions: the root's `*.md`, `docs/*.md` and `RFCs/*.md`, relative to
/// `root`, sorted.
pub fn pages(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for dir in PAGE_DIRS {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path: PathBuf = entry.path();
            if path.is_file() && path.extension().and_then(|e| e.to_str()) == Some("md") {
                if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                    // The workspace root's pages (README.md) are named without a directory, so
                    // their relative links need no `../`.
                    found.push(if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") });
                }
            }
        }
    }
    found.sort();
    found
}

/// What regenerating every page against the committed snapshot found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `page: region` for every region whose committed content differs.
    pub stale: Vec<String>,
    /// Pages whose regions could not be generated, with why.
    pub errors: Vec<String>,
    /// How many regions there are in all.
    pub regions: usize,
}

/// Regenerates every page under `root`; writes the changed ones unless `check`.
pub fn update_all(root: &Path, check: bool) -> Result<Outcome, String> {
    let snapshot = Snapshot::load(root)?;
    let mut outcome = Outcome::default();
    for page in pages(root) {
        let path = root.join(&page);
        let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {page}: {e}"))?;
        let cx = Context {
            snapshot: &snapshot,
            root,
            page: &page,
        };
        match regenerate(&text, &cx) {
            Ok((new, changed)) => {
                outcome.regions += regions(&text).map_or(0, |r| r.len());
                if changed.is_empty() {
                    continue;
                }
                outcome
                    .stale
                    .extend(changed.iter().map(|id| format!("{page}: `{id}`")));
                if !check {
                    fs::write(&path, new).map_err(|e| format!("cannot write {page}: {e}"))?;
                }
            }
            Err(e) => outcome.errors.push(format!("{page}: {e}")),
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn cx<'a>(snapshot: &'a Snapshot, root: &'a Path) -> Context<'a> {
        Context {
            snapshot,
            root,
            page: "docs/page.md",
        }
    }

    #[test]
    fn markers_are_recognised_on_their_own_lines() {
        assert_eq!(
            marker("<!-- eval:bind-cost:start bench operations=bind -->"),
            Some(Marker::Start("eval", "bind-cost", "bench operations=bind"))
        );
        assert_eq!(
            marker("  <!-- eval:bind-cost:end -->\n"),
            Some(Marker::End("eval", "bind-cost"))
        );
        assert_eq!(
            marker("<!-- example:strategy_tagged:start -->"),
            Some(Marker::Start("example", "strategy_tagged", ""))
        );
        assert_eq!(marker("<!-- send-sync:start -->"), None);
        assert_eq!(marker("<!-- eval:x:starting -->"), None);
        assert_eq!(marker("<!-- eval:a b:start -->"), None);
        assert_eq!(marker("text <!-- eval:x:end -->"), None);
    }

    #[test]
    fn regions_skip_fenced_code_and_refuse_broken_markers() {
        let page = "a\n```md\n<!-- eval:shown:start hazards -->\n```\n<!-- eval:t:start hazards -->\nold\n<!-- eval:t:end -->\nb\n";
        let r = regions(page).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].name, "t");
        assert_eq!(&page[r[0].content_start..r[0].content_end], "old\n");
        assert!(regions("<!-- eval:t:start hazards -->\n")
            .unwrap_err()
            .contains("no end marker"));
        assert!(regions("<!-- eval:t:end -->\n")
            .unwrap_err()
            .contains("without a start"));
        let twice = "<!-- eval:t:start hazards -->\n<!-- eval:t:end -->\n<!-- eval:t:start hazards -->\n<!-- eval:t:end -->\n";
        assert!(regions(twice).unwrap_err().contains("twice"));
        assert!(regions("<!-- example:e:start x=1 -->\n<!-- example:e:end -->\n").is_err());
    }

    #[test]
    fn regenerating_fills_tables_and_examples_and_is_idempotent() {
        let dir = TestDir::new("docs-regions");
        let root = dir.path();
        fs::create_dir_all(root.join("examples")).unwrap();
        fs::write(root.join("examples/hello.rs"), "fn main() {}").unwrap();
        let snapshot = Snapshot::default();
        let page = "# T\n\n<!-- eval:sizes:start handle-size -->\n<!-- eval:sizes:end -->\n\n<!-- example:hello:start -->\nstale\n<!-- example:hello:end -->\nend\n";
        let (new, changed) = regenerate(page, &cx(&snapshot, root)).unwrap();
        assert_eq!(changed, ["eval:sizes", "example:hello"]);
        assert!(
            new.contains(
                "<!-- eval:sizes:start handle-size -->\n<!-- Generated by `cargo xtask docs`"
            ),
            "{new}"
        );
        assert!(
            new.contains("\n\nNot measured: the snapshot in `docs/data/` has no handle sizes."),
            "{new}"
        );
        assert!(
            new.contains("```rust\nfn main() {}\n```\n\n<!-- example:hello:end -->\nend\n"),
            "{new}"
        );
        let (again, changed) = regenerate(&new, &cx(&snapshot, root)).unwrap();
        assert_eq!(again, new);
        assert!(changed.is_empty());
        let bad = "<!-- example:missing:start -->\n<!-- example:missing:end -->\n";
        assert!(regenerate(bad, &cx(&snapshot, root))
            .unwrap_err()
            .contains("examples/missing.rs"));
    }

    #[test]
    fn update_all_writes_or_only_reports() {
        let dir = TestDir::new("docs-update");
        let root = dir.path();
        fs::create_dir_all(root.join("RFCs")).unwrap();
        let page = "<!-- eval:h:start hazards -->\n<!-- eval:h:end -->\n";
        fs::write(root.join("RFCs/0001-x.md"), page).unwrap();
        let checked = update_all(root, true).unwrap();
        assert_eq!(checked.stale, ["RFCs/0001-x.md: `eval:h`"]);
        assert_eq!(
            fs::read_to_string(root.join("RFCs/0001-x.md")).unwrap(),
            page
        );
        update_all(root, false).unwrap();
        let after = update_all(root, true).unwrap();
        assert!(after.stale.is_empty() && after.errors.is_empty());
        assert_eq!(after.regions, 1);
    }

    /// The committed pages match what the committed snapshot and examples generate: a table or
    /// example copy that is stale fails here, in `cargo test -p xtask` (and so in
    /// `cargo xtask test` and CI), with no interpreter needed.
    #[test]
    fn committed_pages_match_the_committed_snapshot() {
        let root = crate::paths::workspace_root();
        let outcome = update_all(&root, true).expect("the snapshot in docs/data/ must load");
        assert!(
            outcome.errors.is_empty(),
            "generated regions that cannot be generated:\n  {}",
            outcome.errors.join("\n  ")
        );
        assert!(
            outcome.stale.is_empty(),
            "stale generated regions (regenerate them with `cargo xtask docs --tables-only`, \
             or `cargo xtask docs`):\n  {}",
            outcome.stale.join("\n  ")
        );
    }
}
