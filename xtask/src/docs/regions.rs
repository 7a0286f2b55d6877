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
use std::path::Path;

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
    let inner = line.trim().strip_prefix("<!--")?.strip_suffix("-->")?.trim();
    let after = |p: &'static str| Some((p, inner.strip_prefix(p)?.strip_prefix(':')?));
    let (prefix, rest) = after("eval").or_else(|| after("example"))?;
    let (name, rest) = rest.split_once(':')?;
    let named = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || !name.chars().all(named) {
        return None;
    }
    if rest == "end" {
        return Some(Marker::End(prefix, name));
    }
    let args = rest.strip_prefix("start")?;
    let spaced = args.is_empty() || args.starts_with(char::is_whitespace);
    spaced.then(|| Marker::Start(prefix, name, args.trim()))
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
        let (at, line) = lines[i];
        let trimmed = line.trim_start();
        i += 1;
        if let Some(open) = fence {
            fence = fence.filter(|_| !trimmed.starts_with(open));
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            continue;
        }
        let (prefix, name, args) = match marker(line) {
            Some(Marker::Start(prefix, name, args)) => (prefix, name, args),
            Some(Marker::End(p, name)) => {
                return Err(format!("`{p}:{name}` ends without a start marker"))
            }
            None => continue,
        };
        let id = format!("{prefix}:{name}");
        let body = match prefix {
            "eval" => Body::Table(Spec::parse(args).map_err(|e| format!("`{id}`: {e}"))?),
            _ if args.is_empty() => Body::Example,
            _ => return Err(format!("`{id}`: an example marker takes no arguments")),
        };
        let end = (i..lines.len()).find(|&j| marker(lines[j].1) == Some(Marker::End(prefix, name)));
        let end = end.ok_or(format!("`{id}` has no end marker `<!-- {id}:end -->`"))?;
        if found.iter().any(|r| r.id() == id) {
            return Err(format!("`{id}` appears twice"));
        }
        let (content_start, content_end) = (at + line.len(), lines[end].0);
        found.push(Region { prefix, name: name.to_string(), body, content_start, content_end });
        i = end + 1;
    }
    Ok(found)
}

/// The content a region should have.
fn content(region: &Region, cx: &Context<'_>) -> Result<String, String> {
    let id = region.id();
    let Body::Table(spec) = &region.body else {
        let file = format!("examples/{}.rs", region.name);
        let source = fs::read_to_string(cx.root.join(&file));
        let source = source.map_err(|e| format!("`{id}`: cannot read {file}: {e}"))?;
        let newline = if source.ends_with('\n') { "" } else { "\n" };
        return Ok(format!(
            "<!-- Copied by `cargo xtask docs` from {file}, which `cargo test` runs \
             (tests/docs_examples.rs): edit that file, not this copy. -->\n\n```rust\n{source}{newline}```\n\n"
        ));
    };
    let blocks = tables::render(spec, cx).map_err(|e| format!("`{id}`: {e}"))?;
    Ok(format!(
        "<!-- Generated by `cargo xtask docs` from the snapshot in docs/data/: change the \
         start marker's arguments, not this table. -->\n\n{}\n",
        crate::render::markdown(&blocks)
    ))
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
/// `root`, sorted. The workspace root's pages (README.md) are named without a directory, so
/// their relative links need no `../`.
pub fn pages(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for dir in PAGE_DIRS {
        let entries = fs::read_dir(root.join(dir)).into_iter().flatten().flatten();
        for path in entries.map(|e| e.path()).filter(|p| p.is_file()) {
            let md = path.extension().is_some_and(|e| e == "md");
            let name = path.file_name().and_then(|n| n.to_str()).filter(|_| md);
            let dir = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            found.extend(name.map(|name| format!("{dir}{name}")));
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
        let cx = Context { snapshot: &snapshot, root, page: &page };
        match regenerate(&text, &cx) {
            Ok((new, changed)) => {
                outcome.regions += regions(&text).map_or(0, |r| r.len());
                if changed.is_empty() {
                    continue;
                }
                outcome.stale.extend(changed.iter().map(|id| format!("{page}: `{id}`")));
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

    #[test]
    fn markers_are_recognised_on_their_own_lines() {
        let start = |p, n, a| Some(Marker::Start(p, n, a));
        let cases = [
            (
                "<!-- eval:bind-cost:start bench operations=bind -->",
                start("eval", "bind-cost", "bench operations=bind"),
            ),
            ("  <!-- eval:bind-cost:end -->\n", Some(Marker::End("eval", "bind-cost"))),
            ("<!-- example:strategy_tagged:start -->", start("example", "strategy_tagged", "")),
            ("<!-- send-sync:start -->", None),
            ("<!-- eval:x:starting -->", None),
            ("<!-- eval:a b:start -->", None),
            ("text <!-- eval:x:end -->", None),
        ];
        for (line, want) in cases {
            assert_eq!(marker(line), want, "{line}");
        }
    }

    #[test]
    fn regions_skip_fenced_code_and_refuse_broken_markers() {
        let page = "a\n```md\n<!-- eval:shown:start hazards -->\n```\n<!-- eval:t:start hazards -->\nold\n<!-- eval:t:end -->\nb\n";
        let r = regions(page).unwrap();
        assert_eq!((r.len(), r[0].name.as_str()), (1, "t"));
        assert_eq!(&page[r[0].content_start..r[0].content_end], "old\n");
        let (start, end) = ("<!-- eval:t:start hazards -->\n", "<!-- eval:t:end -->\n");
        let broken = [
            (start.to_string(), "no end marker"),
            (end.to_string(), "without a start"),
            (format!("{start}{end}{start}{end}"), "twice"),
            ("<!-- example:e:start x=1 -->\n<!-- example:e:end -->\n".into(), "takes no arguments"),
            ("<!-- eval:t:start -->\n<!-- eval:t:end -->\n".into(), "no table kind"),
        ];
        for (page, why) in broken {
            assert!(regions(&page).unwrap_err().contains(why), "{page}");
        }
    }

    #[test]
    fn regenerating_fills_tables_and_examples_and_is_idempotent() {
        let dir = TestDir::new("docs-regions");
        let root = dir.path();
        fs::create_dir_all(root.join("examples")).unwrap();
        fs::write(root.join("examples/hello.rs"), "fn main() {}").unwrap();
        let snapshot = Snapshot::default();
        let cx = Context { snapshot: &snapshot, root, page: "docs/page.md" };
        let page = "# T\n\n<!-- eval:sizes:start handle-size -->\n<!-- eval:sizes:end -->\n\n<!-- example:hello:start -->\nstale\n<!-- example:hello:end -->\nend\n";
        let (new, changed) = regenerate(page, &cx).unwrap();
        assert_eq!(changed, ["eval:sizes", "example:hello"]);
        let wants = [
            "<!-- eval:sizes:start handle-size -->\n<!-- Generated by `cargo xtask docs`",
            "\n\nNot measured: the snapshot in `docs/data/` has no handle sizes.",
            "```rust\nfn main() {}\n```\n\n<!-- example:hello:end -->\nend\n",
        ];
        for want in wants {
            assert!(new.contains(want), "{want}: {new}");
        }
        assert_eq!(regenerate(&new, &cx).unwrap(), (new, vec![]));
        let bad = "<!-- example:missing:start -->\n<!-- example:missing:end -->\n";
        assert!(regenerate(bad, &cx).unwrap_err().contains("examples/missing.rs"));
    }

    #[test]
    fn update_all_writes_or_only_reports() {
        let dir = TestDir::new("docs-update");
        let (root, page) = (dir.path(), "<!-- eval:h:start hazards -->\n<!-- eval:h:end -->\n");
        fs::create_dir_all(root.join("RFCs")).unwrap();
        fs::write(root.join("RFCs/0001-x.md"), page).unwrap();
        assert_eq!(update_all(root, true).unwrap().stale, ["RFCs/0001-x.md: `eval:h`"]);
        assert_eq!(fs::read_to_string(root.join("RFCs/0001-x.md")).unwrap(), page);
        update_all(root, false).unwrap();
        let after = update_all(root, true).unwrap();
        assert!(after.stale.is_empty() && after.errors.is_empty() && after.regions == 1);
    }

    /// The committed pages match what the committed snapshot and examples generate: a table or
    /// example copy that is stale fails here, in `cargo test -p xtask` (and so in
    /// `cargo xtask test` and CI), with no interpreter needed.
    #[test]
    fn committed_pages_match_the_committed_snapshot() {
        let root = crate::paths::workspace_root();
        let outcome = update_all(&root, true).expect("the snapshot in docs/data/ must load");
        let errors = outcome.errors.join("\n  ");
        assert!(
            outcome.errors.is_empty(),
            "generated regions that cannot be generated:\n  {errors}"
        );
        let stale = outcome.stale.join("\n  ");
        assert!(
            outcome.stale.is_empty(),
            "stale generated regions (regenerate them with `cargo xtask docs --tables-only`, \
             or `cargo xtask docs`):\n  {stale}"
        );
    }
}
