//! The evaluation tables of the docs and RFCs, rendered from the snapshot (`docs/data/*.json`)
//! and nothing else.
//!
//! A page asks for a table with a start marker naming the region, the kind of table and its
//! arguments (see `regions.rs` for the marker syntax):
//!
//! | kind | records | arguments (all optional, comma-separated lists) |
//! |---|---|---|
//! | `hazards` | hazard verdicts | `strategies`, `cases` (`H2` matches `H2`, `H2.kept`, ...), `builds` |
//! | `hazard-matrix` | hazard verdicts | `strategies`, `cases`, `builds` |
//! | `bench` | bench figures | `operations`, `strategies`, `interpreters`, `builds`, `metric` (`ns` or `instructions`), `baseline` (a strategy, or `none`) |
//! | `scaling` | bench figures with a scaling ratio | `operations`, `strategies`, `builds` |
//! | `handle-size` | handle sizes | `strategies`, `builds` |
//! | `targets` | bench figures, judged by the report's own target checks | `strategies`, `builds` |
//! | `send-sync` | Send/Sync cells (`docs/data/send-sync.json`): matrix and details | `types` |
//! | `send-sync-matrix` | Send/Sync cells: the matrix only | `types` |
//!
//! Every table ends with its provenance: the snapshot files, the producer's command (and whether
//! it was a `--quick` run), the interpreter builds with their exact versions, the PyO3 version
//! and the machine. A figure the snapshot lacks is printed as "not measured"; a table with no
//! figures at all says so in one line, naming the command that would produce them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use interpsafe_results::{
    build_rank, hazard_number, strategy_rank, Environment, InterpreterBuild, Machine, RecordData,
    Interval, SendSyncCell, Verdict, REFERENCE,
};

use super::snapshot::{Snapshot, Source, SEND_SYNC};
use crate::render::{Block, Table};

/// A strategy's sort key ([`strategy_rank`]).
type StrategyKey = (usize, String);
/// A build's sort key ([`build_rank`]).
type BuildKey = (bool, String);
/// A scaling row: build, scenario, strategy.
type ScalingRow = (BuildKey, String, StrategyKey);
/// A handle-size cell: size, size as `Option`, short type name.
type SizeCell = (usize, usize, String);

/// Which threads can reach one object at once: the Send/Sync model's rule sets, in column
/// order: name, column heading, whether its build needs a free-threaded interpreter, and the
/// cargo features of its build.
pub const RULE_SETS: [(&str, &str, bool, &[&str]); 3] = [
    ("gil", "GIL build", false, &[]),
    ("free-threaded", "free-threaded build", true, &[]),
    (
        "own-gil",
        "own-GIL subinterpreters",
        false,
        &["own-gil-rules"],
    ),
];

/// A table request: its kind and arguments, as written in the start marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The table kind (`hazards`, `bench`, ...).
    pub kind: String,
    /// `key=value` arguments.
    pub args: BTreeMap<String, String>,
}

impl Spec {
    /// Parses `KIND key=value ...`.
    pub fn parse(text: &str) -> Result<Spec, String> {
        let mut words = text.split_whitespace();
        let kind = words
            .next()
            .ok_or("no table kind (e.g. `hazards`, `bench`)")?
            .to_string();
        let mut args = BTreeMap::new();
        for word in words {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| format!("argument `{word}` is not key=value"))?;
            if args.insert(k.to_string(), v.to_string()).is_some() {
                return Err(format!("argument `{k}` is given twice"));
            }
        }
        Ok(Spec { kind, args })
    }

    /// Refuses arguments the kind does not take, so that a typo cannot silently widen a table.
    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        for k in self.args.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(format!(
                    "`{}` tables take no argument `{k}` (they take: {})",
                    self.kind,
                    allowed.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// A comma-separated list argument.
    fn list(&self, key: &str) -> Option<Vec<String>> {
        self.args.get(key).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
    }
}

/// What a table is rendered against.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The snapshot.
    pub snapshot: &'a Snapshot,
    /// The workspace root (for `send-sync-matrix`, which reads `docs/send-sync.md`).
    pub root: &'a Path,
    /// The page the table goes into, relative to the root (for relative links).
    pub page: &'a str,
}

impl Context<'_> {
    /// The prefix that turns a root-relative path into a link from the page.
    fn up(&self) -> String {
        "../".repeat(self.page.matches('/').count())
    }
}

/// Renders the table `spec` asks for: Markdown ending in a newline.
pub fn render(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    match spec.kind.as_str() {
        "hazards" => {
            spec.only(&["strategies", "cases", "builds"])?;
            Ok(hazards(spec, cx))
        }
        "hazard-matrix" => {
            spec.only(&["strategies", "cases", "builds"])?;
            Ok(hazard_matrix(spec, cx))
        }
        "bench" => {
            spec.only(&[
                "operations",
                "strategies",
                "interpreters",
                "builds",
                "metric",
                "baseline",
            ])?;
            bench(spec, cx)
        }
        "scaling" => {
            spec.only(&["operations", "strategies", "builds"])?;
            Ok(scaling(spec, cx))
        }
        "handle-size" => {
            spec.only(&["strategies", "builds"])?;
            Ok(handle_size(spec, cx))
        }
        "targets" => {
            spec.only(&["strategies", "builds"])?;
            Ok(targets(spec, cx))
        }
        "send-sync" => {
            spec.only(&["types"])?;
            send_sync(spec, cx)
        }
        "send-sync-matrix" => {
            spec.only(&["types"])?;
            send_sync_matrix(spec, cx)
        }
        "guarantees" => {
            spec.only(&["strategies", "builds"])?;
            Ok(guarantees(spec, cx))
        }
        other => Err(format!(
            "unknown table kind `{other}` (known: hazards, hazard-matrix, bench, scaling, \
             handle-size, targets, send-sync, send-sync-matrix, guarantees)"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces: ordering, filters, provenance, number formats.

/// Whether `list` (absent: everything) admits `name`.
fn admits(list: &Option<Vec<String>>, name: &str) -> bool {
    list.as_ref().is_none_or(|l| l.iter().any(|x| x == name))
}

/// Whether a case ID is selected: `H2` selects `H2` and its forms (`H2.kept`); `H2.kept` only
/// itself.
fn case_selected(list: &Option<Vec<String>>, id: &str) -> bool {
    list.as_ref().is_none_or(|l| {
        l.iter().any(|want| {
            id == want || (!want.contains('.') && id.split('.').next() == Some(want.as_str()))
        })
    })
}

/// The strategies of `present`, restricted to and ordered by the `strategies` argument if given,
/// else in the toolkit's order.
fn columns(spec: &Spec, present: &BTreeSet<String>) -> Vec<String> {
    match spec.list("strategies") {
        Some(list) => list,
        None => {
            let mut all: Vec<String> = present.iter().cloned().collect();
            all.sort_by_key(|s| strategy_rank(s));
            all
        }
    }
}

/// How a build is described: `3.13t`: CPython 3.13.15, free-threaded.
fn describe_build(b: &InterpreterBuild) -> String {
    let kind = if b.free_threaded {
        "free-threaded"
    } else {
        "GIL"
    };
    let variant = match b.variant.as_deref() {
        Some("asan") => ", AddressSanitizer build".to_string(),
        Some("debug") => ", debug build (`--with-pydebug`)".to_string(),
        Some("static") => ", libpython linked statically (no `--enable-shared`)".to_string(),
        Some(other) => format!(", {other} build"),
        None => String::new(),
    };
    format!("`{}`: CPython {}, {kind}{variant}", b.name, b.version)
}

/// How a machine is described.
fn describe_machine(m: &Machine) -> String {
    let mut s = format!("{} {}, {} logical CPUs", m.os, m.arch, m.cpus);
    if let Some(model) = &m.cpu_model {
        let _ = write!(s, " ({model})");
    }
    if let Some(t) = m.threads_per_core {
        let _ = write!(s, ", {t} thread(s) per core");
    }
    s
}

/// The provenance paragraph of a table generated from `used`.
fn provenance(used: &[(&Source, &Environment)]) -> Block {
    // (producer, quick) -> files, in order of first appearance.
    let mut files: Vec<((&str, bool), Vec<&str>)> = Vec::new();
    let mut builds: Vec<&InterpreterBuild> = Vec::new();
    let mut pyo3: Vec<&str> = Vec::new();
    let mut machines: Vec<&Machine> = Vec::new();
    for (source, env) in used {
        let producer = (source.result.producer.as_str(), source.is_quick());
        match files.iter_mut().find(|(p, _)| *p == producer) {
            Some((_, list)) if list.contains(&source.file.as_str()) => {}
            Some((_, list)) => list.push(&source.file),
            None => files.push((producer, vec![&source.file])),
        }
        if !builds.contains(&&env.interpreter) {
            builds.push(&env.interpreter);
        }
        if !pyo3.contains(&env.pyo3_version.as_str()) {
            pyo3.push(&env.pyo3_version);
        }
        if !machines.contains(&&env.machine) {
            machines.push(&env.machine);
        }
    }
    builds.sort_by_key(|b| build_rank(b));
    let files: Vec<String> = files
        .iter()
        .map(|((producer, quick), list)| {
            let quick = if *quick {
                ": **a quick run, smoke numbers to develop with, not to cite**"
            } else {
                ""
            };
            let list: Vec<String> = list.iter().map(|f| format!("`{f}`")).collect();
            format!("{} (written by `{producer}`{quick})", list.join(", "))
        })
        .collect();
    let builds: Vec<String> = builds.iter().map(|b| describe_build(b)).collect();
    let machines: Vec<String> = machines.iter().map(|m| describe_machine(m)).collect();
    Block::Text(format!(
        "Source: {}. Builds: {}. PyO3 {}. Machine: {}.",
        files.join("; "),
        builds.join("; "),
        pyo3.join(", "),
        machines.join("; ")
    ))
}

/// The line printed instead of a table that has no figures at all.
fn not_measured(what: &str, how: &str) -> Vec<Block> {
    vec![Block::Text(format!(
        "Not measured: the snapshot in `docs/data/` has no {what}. Produce them with `{how}`, then \
         copy them in with `cargo xtask docs --refresh`."
    ))]
}

/// Groups digits in threes: 1234567 -> 1,234,567.
fn grouped(whole: u64) -> String {
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A figure with precision suited to its size.
fn figure(v: f64) -> String {
    if v >= 1000.0 {
        grouped(v.round() as u64)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

// ---------------------------------------------------------------------------------------------
// Hazard verdicts.

/// One hazard verdict as the tables use it.
#[derive(Debug, Clone)]
struct Instance<'a> {
    source: &'a Source,
    env: &'a Environment,
    case: &'a str,
    strategy: &'a str,
    setting: String,
    observed: &'a Verdict,
    expected: &'a Verdict,
    threat: Option<&'a str>,
}

/// The hazard verdicts the spec selects, with the case order of first appearance (by hazard
/// number).
fn instances<'a>(spec: &Spec, snapshot: &'a Snapshot) -> Vec<Instance<'a>> {
    let strategies = spec.list("strategies");
    let cases = spec.list("cases");
    let builds = spec.list("builds");
    snapshot
        .records()
        .filter_map(|(source, r)| match &r.data {
            RecordData::Hazard(h)
                if admits(&strategies, &h.strategy)
                    && case_selected(&cases, &h.hazard)
                    && admits(&builds, &r.environment.interpreter.name) =>
            {
                Some(Instance {
                    source,
                    env: &r.environment,
                    case: &h.hazard,
                    strategy: &h.strategy,
                    setting: h.isolation.clone().unwrap_or_else(|| "-".into()),
                    observed: &h.observed,
                    expected: &h.expected,
                    threat: h.threat.as_deref(),
                })
            }
            _ => None,
        })
        .collect()
}

/// The distinct values of `f` over `items`, in order of first appearance.
fn distinct<'a, T>(items: &'a [T], f: impl Fn(&'a T) -> &'a str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        let v = f(item);
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// The case IDs of `items`, ordered by hazard number, forms in order of first appearance.
fn case_order<'a>(items: &'a [Instance<'a>]) -> Vec<&'a str> {
    let mut cases = distinct(items, |i| i.case);
    // A stable sort keeps each hazard's forms in the order the suite ran them.
    cases.sort_by_key(|c| hazard_number(c));
    cases
}

/// The text before the first `:` if it is a slug (`deferred`, `per-interpreter`).
fn slug(text: &str) -> Option<&str> {
    let head = text.split(':').next()?.trim();
    let ok = !head.is_empty() && head.chars().all(|c| c.is_ascii_lowercase() || c == '-');
    ok.then_some(head)
}

/// What the suite saw of an undetected misuse, in a few words, most telling first.
fn seen(how: &str) -> Vec<&'static str> {
    const WORDS: &[(&str, &str)] = &[
        ("asan", "ASan report"),
        ("crash", "crash"),
        ("stderr", "error on stderr"),
        ("hang", "hang"),
        ("panic", "panic"),
        ("wrong-interpreter", "ran in the wrong interpreter"),
        ("wrong-object", "wrong object"),
        ("wrong-result", "wrong result"),
        ("lost-updates", "lost updates"),
        ("use-failed", "use failed"),
        ("refcount", "refcount"),
        ("pool", "decref pool out of balance"),
        ("leak", "leak"),
    ];
    let slugs: Vec<&str> = how.split("; ").filter_map(slug).collect();
    let mut words: Vec<&'static str> = WORDS
        .iter()
        .filter(|(k, _)| slugs.contains(k))
        .map(|(_, w)| *w)
        .collect();
    if how.contains("gettotalrefcount() rose") {
        words.push("references leaked");
    }
    if words.is_empty() {
        words.push(if slugs.contains(&"accepted") {
            "accepted"
        } else {
            "see the JSON"
        });
    }
    words
}

/// A verdict in a few words.
fn label(observed: &Verdict, expected: &Verdict, up: &str) -> String {
    let text = match observed {
        Verdict::CompileError { case } => {
            let stem = Path::new(case)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(case);
            format!("compile error ([`{stem}`]({up}{case}))")
        }
        Verdict::RuntimeError { message } => {
            let op = message.split(':').next().unwrap_or(message).trim();
            if message.contains("has ended") {
                format!("error at `{op}` (owner ended)")
            } else {
                format!("error at `{op}`")
            }
        }
        Verdict::Undetected { how } => format!("**undetected**: {}", seen(how).join(", ")),
        Verdict::NotApplicable { why } => {
            let declared = match expected {
                Verdict::NotApplicable { why } => slug(why),
                _ => None,
            };
            match slug(why).or(declared) {
                Some(s) => format!("n/a ({s})"),
                None => "n/a".to_string(),
            }
        }
    };
    if observed.kind() == expected.kind() {
        text
    } else {
        format!("{text} **≠ declared**")
    }
}

/// One cell: the verdicts of `items` (one case, one strategy, every build and setting). If they
/// differ, each verdict names where it was seen: a build alone when it covers every setting of
/// that build in the cell, else the build with its settings.
fn summarise(items: &[&Instance<'_>], up: &str) -> String {
    if items.is_empty() {
        return "not measured".to_string();
    }
    let mut groups: Vec<(String, Vec<&Instance<'_>>)> = Vec::new();
    for item in items {
        let l = label(item.observed, item.expected, up);
        match groups.iter_mut().find(|(g, _)| *g == l) {
            Some((_, members)) => members.push(item),
            None => groups.push((l, vec![item])),
        }
    }
    if groups.len() == 1 {
        return groups.remove(0).0;
    }
    // Where every verdict is "undetected", say so once and list what was seen where.
    const UNDETECTED: &str = "**undetected**: ";
    let all_undetected = groups.iter().all(|(l, _)| l.starts_with(UNDETECTED));
    if all_undetected {
        for (l, _) in groups.iter_mut() {
            *l = l[UNDETECTED.len()..].to_string();
        }
    }
    let mut builds: Vec<&InterpreterBuild> = Vec::new();
    for item in items {
        if !builds.contains(&&item.env.interpreter) {
            builds.push(&item.env.interpreter);
        }
    }
    builds.sort_by_key(|b| build_rank(b));
    let parts: Vec<String> = groups
        .iter()
        .map(|(l, members)| {
            let places: Vec<String> = builds
                .iter()
                .filter_map(|b| {
                    let all: Vec<&str> = items
                        .iter()
                        .filter(|i| &&i.env.interpreter == b)
                        .map(|i| i.setting.as_str())
                        .collect();
                    let here: Vec<&str> = members
                        .iter()
                        .filter(|i| &&i.env.interpreter == b)
                        .map(|i| i.setting.as_str())
                        .collect();
                    if here.is_empty() {
                        None
                    } else if here.len() == all.len() {
                        Some(format!("`{}`", b.name))
                    } else {
                        Some(format!("`{}` ({})", b.name, here.join(", ")))
                    }
                })
                .collect();
            format!("{l} on {}", places.join(", "))
        })
        .collect();
    if all_undetected {
        format!("{UNDETECTED}{}", parts.join("; "))
    } else {
        parts.join("; ")
    }
}

/// The legend under every hazard table.
fn hazard_legend(up: &str, per_setting: bool) -> String {
    let scope = if per_setting {
        "Cells: what the hazard suite observed for that case, setting and strategy on that build."
    } else {
        "Cells: what the hazard suite observed for that case and strategy on every build and \
         setting in the snapshot; where they differ, each verdict says where it was seen."
    };
    format!(
        "{scope} `error at op`: a clear runtime error from operation `op`, and the process \
         survives; **undetected**: not caught, with what the suite saw instead (the suite observes \
         the wrong interpreter directly through probe objects, since a crash may or may not \
         follow); n/a (why): the hazard cannot arise, and why; compile error: the misuse does not \
         compile, shown by the linked compile-fail case. **≠ declared** marks a cell where the \
         strategy declared another kind of verdict: the suite fails on it, so the snapshot comes \
         from a failing run there. Cases and settings: [the hazard catalogue]({up}docs/hazards.md)."
    )
}

/// `hazards`: cases by strategies, each cell summarised over builds and settings.
fn hazards(spec: &Spec, cx: &Context<'_>) -> Vec<Block> {
    let items = instances(spec, cx.snapshot);
    if items.is_empty() {
        return not_measured("hazard verdicts for this selection", "cargo xtask hazards");
    }
    let up = cx.up();
    let present: BTreeSet<String> = items.iter().map(|i| i.strategy.to_string()).collect();
    let strategies = columns(spec, &present);
    let mut head = vec!["case".to_string()];
    head.extend(strategies.iter().map(|s| format!("`{s}`")));
    let mut table = Table::new(head);
    for case in case_order(&items) {
        let mut cells = vec![format!("`{case}`")];
        for s in &strategies {
            let cell: Vec<&Instance<'_>> = items
                .iter()
                .filter(|i| i.case == case && i.strategy == s)
                .collect();
            cells.push(summarise(&cell, &up));
        }
        table.push(cells);
    }
    let used: Vec<(&Source, &Environment)> = items.iter().map(|i| (i.source, i.env)).collect();
    vec![Block::Table(table), Block::Text(hazard_legend(&up, false)), provenance(&used)]
}

/// `hazard-matrix`: per build, cases and settings by strategies.
fn hazard_matrix(spec: &Spec, cx: &Context<'_>) -> Vec<Block> {
    let items = instances(spec, cx.snapshot);
    if items.is_empty() {
        return not_measured("hazard verdicts", "cargo xtask hazards");
    }
    let up = cx.up();
    let mut builds: Vec<&InterpreterBuild> = Vec::new();
    for i in &items {
        if !builds.contains(&&i.env.interpreter) {
            builds.push(&i.env.interpreter);
        }
    }
    builds.sort_by_key(|b| build_rank(b));
    let mut out = Vec::new();
    for b in builds {
        let mine: Vec<Instance<'_>> = items
            .iter()
            .filter(|i| &i.env.interpreter == b)
            .cloned()
            .collect();
        let present: BTreeSet<String> = mine.iter().map(|i| i.strategy.to_string()).collect();
        let strategies = columns(spec, &present);
        let mut head = vec!["case".to_string(), "setting".to_string()];
        head.extend(strategies.iter().map(|s| format!("`{s}`")));
        let mut table = Table::new(head);
        for case in case_order(&mine) {
            let of_case: Vec<Instance<'_>> =
                mine.iter().filter(|i| i.case == case).cloned().collect();
            for setting in distinct(&of_case, |i| i.setting.as_str()) {
                let mut cells = vec![format!("`{case}`"), setting.to_string()];
                for s in &strategies {
                    let cell: Vec<&Instance<'_>> = of_case
                        .iter()
                        .filter(|i| i.setting == setting && i.strategy == s)
                        .collect();
                    cells.push(summarise(&cell, &up));
                }
                table.push(cells);
            }
        }
        let used: Vec<(&Source, &Environment)> = mine.iter().map(|i| (i.source, i.env)).collect();
        out.extend([Block::Heading(4, describe_build(b)), Block::Table(table), provenance(&used)]);
    }
    out.push(Block::Text(hazard_legend(&up, true)));
    out
}

/// `guarantees`: what each strategy guarantees against each caller capability (the threat
/// model's rows), from the verdicts the strategies *declare* for the catalogue's cases, across
/// every build in the snapshot. The hazard suite fails wherever a run differs from a
/// declaration, so the declarations are what ran. A cell holds when no declared verdict of the
/// row is "undetected" on any build; it names the cases that are, otherwise.
fn guarantees(spec: &Spec, cx: &Context<'_>) -> Vec<Block> {
    let items: Vec<Instance<'_>> = instances(spec, cx.snapshot)
        .into_iter()
        .filter(|i| i.threat.is_some())
        .collect();
    if items.is_empty() {
        return not_measured("hazard verdicts with threat-model rows", "cargo xtask hazards");
    }
    let present: BTreeSet<String> = items.iter().map(|i| i.strategy.to_string()).collect();
    let strategies = columns(spec, &present);
    let threats = distinct(&items, |i| i.threat.unwrap_or(""));
    let mut head = vec!["a caller can".to_string(), "cases".to_string()];
    head.extend(strategies.iter().map(|s| format!("`{s}`")));
    let mut table = Table::new(head);
    for threat in threats {
        let of_threat: Vec<&Instance<'_>> =
            items.iter().filter(|i| i.threat == Some(threat)).collect();
        let owned: Vec<Instance<'_>> = of_threat.iter().map(|i| (*i).clone()).collect();
        let cases = case_order(&owned)
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut cells = vec![threat.to_string(), cases];
        for s in &strategies {
            let mine: Vec<&&Instance<'_>> = of_threat.iter().filter(|i| i.strategy == s).collect();
            if mine.is_empty() {
                cells.push("not run".to_string());
                continue;
            }
            let mut open: Vec<&str> = mine
                .iter()
                .filter(|i| matches!(i.expected, Verdict::Undetected { .. }))
                .map(|i| i.case)
                .collect();
            open.sort_by_key(|c| (hazard_number(c), c.to_string()));
            open.dedup();
            let count = |f: fn(&Verdict) -> bool| mine.iter().filter(|i| f(i.expected)).count();
            let refused = count(|v| matches!(v, Verdict::RuntimeError { .. }));
            let compile = count(|v| matches!(v, Verdict::CompileError { .. }));
            let cannot = count(|v| matches!(v, Verdict::NotApplicable { .. }));
            cells.push(if open.is_empty() {
                let mut how = Vec::new();
                if refused > 0 {
                    how.push(format!("{refused} refused"));
                }
                if compile > 0 {
                    how.push(format!("{compile} do not compile"));
                }
                if cannot > 0 {
                    how.push(format!("{cannot} cannot arise"));
                }
                format!("**holds** ({})", how.join(", "))
            } else {
                let ids = open.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(" ");
                format!("not guaranteed: {ids}")
            });
        }
        table.push(cells);
    }
    let mut builds: Vec<&InterpreterBuild> = Vec::new();
    for i in &items {
        if !builds.contains(&&i.env.interpreter) {
            builds.push(&i.env.interpreter);
        }
    }
    builds.sort_by_key(|b| build_rank(b));
    let names = builds.iter().map(|b| format!("`{}`", b.name)).collect::<Vec<_>>().join(", ");
    let note = format!(
        "Each cell counts the declared verdicts of the row's cells (case × setting × build, on \
         {names}); the hazard suite ran every one and failed on any difference. \"not \
         guaranteed\" names the cases the strategy declares undetected."
    );
    let used: Vec<(&Source, &Environment)> = items.iter().map(|i| (i.source, i.env)).collect();
    vec![Block::Table(table), Block::Text(note), provenance(&used)]
}

// ---------------------------------------------------------------------------------------------
// Bench figures.

/// `bench`: operations by strategies, per build and interpreter count, with ratios to a
/// baseline strategy.
fn bench(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let metric = spec.args.get("metric").map_or("ns", String::as_str);
    let (what, unit) = match metric {
        "ns" => (
            "wall-clock figures",
            "wall-clock nanoseconds per operation (criterion's point estimate)",
        ),
        "instructions" => (
            "instruction counts",
            "instructions per operation (callgrind, through gungraun)",
        ),
        other => {
            return Err(format!(
                "metric `{other}` is neither `ns` nor `instructions`"
            ))
        }
    };
    let operations = spec.list("operations");
    let strategies = spec.list("strategies");
    let builds = spec.list("builds");
    let interpreters: Option<Vec<u32>> = match spec.list("interpreters") {
        Some(list) => Some(
            list.iter()
                .map(|n| {
                    n.parse()
                        .map_err(|_| format!("interpreters: `{n}` is not a number"))
                })
                .collect::<Result<_, _>>()?,
        ),
        None => None,
    };
    let baseline = spec
        .args
        .get("baseline")
        .map_or("unchecked", String::as_str);

    // Every selected figure of the metric, first one per key.
    type Key = (String, u32, String, String);
    let mut figures: BTreeMap<Key, (f64, &Source, &Environment)> = BTreeMap::new();
    let mut spreads: BTreeMap<Key, Interval> = BTreeMap::new();
    let mut build_list: Vec<&InterpreterBuild> = Vec::new();
    let mut ops_seen: Vec<&str> = Vec::new();
    let mut strategies_seen: BTreeSet<String> = BTreeSet::new();
    for (source, r) in cx.snapshot.records() {
        let RecordData::Bench(b) = &r.data else {
            continue;
        };
        let value = match metric {
            "ns" => b.ns_per_op,
            _ => b.instructions_per_op,
        };
        let build = &r.environment.interpreter;
        let wanted_op = match &operations {
            Some(list) => list.contains(&b.operation),
            None => b.operation != REFERENCE,
        };
        let Some(value) = value else { continue };
        if b.scaling.is_some()
            || b.threads != 1
            || !wanted_op
            || !admits(&strategies, &b.strategy)
            || !admits(&builds, &build.name)
            || !interpreters
                .as_ref()
                .is_none_or(|l| l.contains(&b.interpreters))
        {
            continue;
        }
        if !build_list.contains(&build) {
            build_list.push(build);
        }
        if !ops_seen.contains(&b.operation.as_str()) {
            ops_seen.push(&b.operation);
        }
        strategies_seen.insert(b.strategy.clone());
        let key = (build.name.clone(), b.interpreters, b.operation.clone(), b.strategy.clone());
        if let Some(spread) = b.ns_interval.filter(|_| metric == "ns") {
            spreads.entry(key.clone()).or_insert(spread);
        }
        figures.entry(key).or_insert((value, source, &r.environment));
    }
    if figures.is_empty() {
        return Ok(not_measured(
            &format!("{what} for this selection"),
            "cargo xtask bench",
        ));
    }
    build_list.sort_by_key(|b| build_rank(b));
    let ops: Vec<String> =
        operations.unwrap_or_else(|| ops_seen.iter().map(|s| s.to_string()).collect());
    let columns = columns(spec, &strategies_seen);
    let used: Vec<(&Source, &Environment)> = figures.values().map(|(_, s, e)| (*s, *e)).collect();

    let mut out = Vec::new();
    if used.iter().any(|(s, _)| s.is_quick()) {
        out.push(Block::Text(
            "**Quick run**: these figures come from `cargo xtask bench --quick` (short warm-up and \
             measurement). They show the shape of the costs and are not figures to cite."
                .into(),
        ));
    }
    let mut head = vec![
        "build".to_string(),
        "interpreters".to_string(),
        "operation".to_string(),
    ];
    head.extend(columns.iter().map(|s| format!("`{s}`")));
    let mut table = Table::new(head);
    for b in &build_list {
        let counts: BTreeSet<u32> = figures
            .keys()
            .filter(|(name, ..)| *name == b.name)
            .map(|(_, n, ..)| *n)
            .collect();
        for n in counts {
            for op in &ops {
                let key = |s: &str| (b.name.clone(), n, op.clone(), s.to_string());
                let get = |s: &str| figures.get(&key(s)).map(|f| f.0);
                let base = if baseline == "none" {
                    None
                } else {
                    get(baseline)
                };
                let mut cells = vec![format!("`{}`", b.name), n.to_string(), format!("`{op}`")];
                for s in &columns {
                    // The spread, where recorded (criterion's confidence interval).
                    let spread = spreads.get(&key(s)).map_or(String::new(), |i| {
                        format!(" [{}–{}]", figure(i.low), figure(i.high))
                    });
                    cells.push(match (get(s), base) {
                        (Some(v), Some(base)) if s != baseline && base > 0.0 => {
                            format!("{}{spread} (×{:.2})", figure(v), v / base)
                        }
                        (Some(v), _) => figure(v) + &spread,
                        (None, _) => "not measured".to_string(),
                    });
                }
                table.push(cells);
            }
        }
    }
    let ratio = if baseline == "none" {
        String::new()
    } else {
        format!(" (×r): the ratio to `{baseline}` on the same row.")
    };
    let spread = if spreads.is_empty() { "" } else { " [a–b]: criterion's 95% confidence interval." };
    let note = format!(
        "Cells: {unit}.{ratio}{spread} interpreters: 1 = only the main interpreter has ever entered toolkit \
         code (the tagged strategy's fast path is on); 2 = an own-GIL subinterpreter is alive as \
         well (the fast path is off); the operation runs in main either way. not measured: the \
         snapshot has no such figure."
    );
    out.extend([Block::Table(table), Block::Text(note), provenance(&used)]);
    Ok(out)
}

/// `scaling`: throughput with N threads (or interpreters) over throughput with one.
fn scaling(spec: &Spec, cx: &Context<'_>) -> Vec<Block> {
    let operations = spec.list("operations");
    let strategies = spec.list("strategies");
    let builds = spec.list("builds");
    type Key = (BuildKey, String, StrategyKey, u32);
    let mut figures: BTreeMap<Key, (f64, &Source, &Environment)> = BTreeMap::new();
    let mut threads: BTreeSet<u32> = BTreeSet::new();
    for (source, r) in cx.snapshot.records() {
        let RecordData::Bench(b) = &r.data else {
            continue;
        };
        let Some(v) = b.scaling else { continue };
        let build = &r.environment.interpreter;
        if !admits(&operations, &b.operation)
            || !admits(&strategies, &b.strategy)
            || !admits(&builds, &build.name)
        {
            continue;
        }
        threads.insert(b.threads);
        figures
            .entry((
                build_rank(build),
                b.operation.clone(),
                strategy_rank(&b.strategy),
                b.threads,
            ))
            .or_insert((v, source, &r.environment));
    }
    if figures.is_empty() {
        return not_measured("thread-scaling figures", "cargo xtask bench");
    }
    let used: Vec<(&Source, &Environment)> = figures.values().map(|(_, s, e)| (*s, *e)).collect();
    let mut out = Vec::new();
    if used.iter().any(|(s, _)| s.is_quick()) {
        out.push(Block::Text(
            "**Quick run**: scaling measured by `cargo xtask bench --quick`; not figures to cite."
                .into(),
        ));
    }
    let mut head = vec![
        "build".to_string(),
        "scenario".to_string(),
        "strategy".to_string(),
    ];
    head.extend(threads.iter().map(|t| format!("{t} thread(s)")));
    let mut table = Table::new(head);
    let rows: BTreeSet<ScalingRow> = figures
        .keys()
        .map(|(b, o, s, _)| (b.clone(), o.clone(), s.clone()))
        .collect();
    for (b, op, s) in rows {
        let mut cells = vec![
            format!("`{}`", b.1),
            format!("`{op}`"),
            format!("`{}`", s.1),
        ];
        for t in &threads {
            cells.push(match figures.get(&(b.clone(), op.clone(), s.clone(), *t)) {
                Some((v, ..)) => format!("×{v:.2}"),
                None => "not measured".to_string(),
            });
        }
        table.push(cells);
    }
    let note = "Cells: throughput with that many threads (each attached to the main interpreter, or \
                each to its own own-GIL interpreter, as the scenario says) over the throughput with \
                one. The `control` scenario is a pure-Rust loop measured in the same run: the \
                machine's own ceiling.";
    out.extend([Block::Table(table), Block::Text(note.into()), provenance(&used)]);
    out
}

/// `handle-size`: each strategy's handle, per build.
fn handle_size(spec: &Spec, cx: &Context<'_>) -> Vec<Block> {
    let strategies = spec.list("strategies");
    let builds = spec.list("builds");
    let mut figures: BTreeMap<(StrategyKey, BuildKey), SizeCell> = BTreeMap::new();
    let mut build_list: Vec<&InterpreterBuild> = Vec::new();
    let mut used: Vec<(&Source, &Environment)> = Vec::new();
    for (source, r) in cx.snapshot.records() {
        let RecordData::HandleSize(h) = &r.data else {
            continue;
        };
        let build = &r.environment.interpreter;
        if !admits(&strategies, &h.strategy) || !admits(&builds, &build.name) {
            continue;
        }
        if !build_list.contains(&build) {
            build_list.push(build);
        }
        used.push((source, &r.environment));
        let short = h
            .type_name
            .rsplit("::")
            .next()
            .unwrap_or(&h.type_name)
            .to_string();
        figures
            .entry((strategy_rank(&h.strategy), build_rank(build)))
            .or_insert((h.size, h.option_size, short));
    }
    if figures.is_empty() {
        return not_measured("handle sizes", "cargo xtask bench");
    }
    build_list.sort_by_key(|b| build_rank(b));
    let mut head = vec!["strategy".to_string(), "handle type".to_string()];
    head.extend(build_list.iter().map(|b| format!("`{}`", b.name)));
    let mut table = Table::new(head);
    let rows: BTreeSet<StrategyKey> = figures.keys().map(|(s, _)| s.clone()).collect();
    for s in rows {
        let type_name = figures
            .iter()
            .find(|((k, _), _)| *k == s)
            .map(|(_, (.., t))| t.clone())
            .unwrap_or_default();
        let mut cells = vec![format!("`{}`", s.1), format!("`{type_name}`")];
        for b in &build_list {
            cells.push(match figures.get(&(s.clone(), build_rank(b))) {
                Some((size, option, _)) => format!("{size} B ({option} B as `Option`)"),
                None => "not measured".to_string(),
            });
        }
        table.push(cells);
    }
    let note = "Cells: `size_of` the strategy's handle type, and of `Option` of it (equal when the \
                handle keeps the pointer's niche).";
    vec![Block::Table(table), Block::Text(note.into()), provenance(&used)]
}

/// `targets`: the performance targets ([`crate::targets::TARGETS`]), judged on the snapshot's
/// bench figures by the same checks `cargo xtask bench` prints, so a page never states a verdict
/// the figures do not give. `strategies` keeps the targets whose text starts with one of them.
fn targets(spec: &Spec, cx: &Context<'_>) -> Vec<Block> {
    let strategies = spec.list("strategies");
    let builds = spec.list("builds");
    let mut used: Vec<(&Source, &Environment)> = Vec::new();
    let mut records = Vec::new();
    for (source, r) in cx.snapshot.records() {
        if !matches!(r.data, RecordData::Bench(_)) || !admits(&builds, &r.environment.interpreter.name) {
            continue;
        }
        if !used.iter().any(|(s, e)| s.file == source.file && *e == &r.environment) {
            used.push((source, &r.environment));
        }
        records.push(r.clone());
    }
    let mut checks = crate::targets::judge(&records);
    checks.retain(|c| {
        strategies
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| c.target.starts_with(&format!("{s} "))))
    });
    if checks.is_empty() {
        return not_measured("performance targets", "cargo xtask bench");
    }
    let mut table = Table::new(["target", "build", "measured", "verdict"]);
    for c in checks {
        let verdict = if c.verdict == "missed" { "**missed**".to_string() } else { c.verdict };
        table.push(vec![c.target, format!("`{}`", c.build), c.measured, verdict]);
    }
    let note = "Each target is judged by the checks `cargo xtask bench` prints at the end of its \
         console output, in the wording of the benches issue: the per-operation targets against \
         `unchecked` in the same bench, the scaling targets against the pure-Rust control loop \
         of the same scaling run (capped at ×2.00: two threads cannot do more than twice the \
         work of one).";
    vec![Block::Table(table), Block::Text(note.into()), provenance(&used)]
}

/// The Send/Sync cells of the snapshot (`docs/data/send-sync.json`) in table order, each row's
/// cells in [`RULE_SETS`] order, for the `types` selected (all if none).
fn send_sync_rows<'a>(spec: &Spec, cx: &Context<'a>) -> Result<Vec<Vec<&'a SendSyncCell>>, String> {
    let mut rows: Vec<Vec<&SendSyncCell>> = Vec::new();
    for (_, r) in cx.snapshot.records() {
        let RecordData::SendSync(c) = &r.data else { continue };
        match rows.iter_mut().find(|row| row[0].type_name == c.type_name) {
            Some(row) => row.push(c),
            None => rows.push(vec![c]),
        }
    }
    let order = |c: &SendSyncCell| RULE_SETS.iter().position(|(name, ..)| *name == c.rules);
    for row in &mut rows {
        row.sort_by_key(|c| order(c));
        if row.len() != RULE_SETS.len() || row.iter().any(|c| order(c).is_none()) {
            return Err(format!("{}: `{}` lacks a rule set", SEND_SYNC, row[0].type_name));
        }
    }
    let types = spec.list("types");
    rows.retain(|row| admits(&types, &row[0].type_name));
    if rows.is_empty() || types.is_some_and(|t| t.len() != rows.len()) {
        return Err(format!(
            "{} has no cells (run `cargo xtask docs`) or lacks some of the types asked for",
            SEND_SYNC
        ));
    }
    Ok(rows)
}

/// The matrix of types by rule sets: the traits, and `(hazard)` where one is unsound.
fn send_sync_matrix_of(rows: &[Vec<&SendSyncCell>]) -> Block {
    let mut head = vec!["type".to_string(), "stands for".to_string()];
    head.extend(RULE_SETS.iter().map(|(_, heading, ..)| heading.to_string()));
    let mut table = Table::new(head);
    for of_type in rows {
        let mut cells = vec![format!("`{}`", of_type[0].type_name), of_type[0].stands_for.clone()];
        for c in of_type {
            let not = |b: bool| if b { "" } else { "!" };
            let sep = if c.send && c.sync { " + " } else { ", " };
            let hazard = if c.hazard { " (hazard)" } else { "" };
            cells.push(format!("{}Send{sep}{}Sync{hazard}", not(c.send), not(c.sync)));
        }
        table.push(cells);
    }
    Block::Table(table)
}

/// `send-sync`: the Send/Sync matrix, then every cell with how it is enforced and why.
fn send_sync(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let rows = send_sync_rows(spec, cx)?;
    let up = cx.up();
    let mut details = Table::new(["type", "rules", "Send", "Sync", "enforced by", "note"]);
    for c in rows.iter().flatten() {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        let mut enforced = String::from("static assertion");
        for case in &c.cases {
            let kind = if case.must_compile { "must compile" } else { "compile-fail" };
            let path = &case.path;
            let _ = write!(enforced, "; {kind}: [`{path}`]({up}compile-fail/tests/{path})");
        }
        let note = if c.hazard { format!("**hazard**: {}", c.note) } else { c.note.clone() };
        let cells = [format!("`{}`", c.type_name), c.rules.clone(), yes_no(c.send), yes_no(c.sync)];
        details.push([cells.to_vec(), vec![enforced, note]].concat());
    }
    let source = format!(
        "Source: `{SEND_SYNC}` (written by `cargo xtask docs`: each rule set's cells by a build \
         compiled for it, whose static assertions held)."
    );
    Ok(vec![send_sync_matrix_of(&rows), Block::Table(details), Block::Text(source)])
}

/// `send-sync-matrix`: rows of the Send/Sync matrix.
fn send_sync_matrix(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let rows = send_sync_rows(spec, cx)?;
    let up = cx.up();
    let note = format!(
        "Rows of the generated table in [docs/send-sync.md]({up}docs/send-sync.md), \
         whose source is the table in `src/send_sync.rs`: each build checks the cells of its \
         own rule set with static assertions, and `cargo xtask docs` builds all three."
    );
    Ok(vec![send_sync_matrix_of(&rows), Block::Text(note)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use interpsafe_results::{BenchFigure, HandleSize, HazardVerdict, ResultFile, ResultRecord};

    fn env(name: &str, variant: Option<&str>) -> Environment {
        Environment {
            interpreter: InterpreterBuild {
                name: name.into(),
                version: "3.13.15".into(),
                free_threaded: name.ends_with('t'),
                variant: variant.map(str::to_string),
            },
            pyo3_version: "0.28.3".into(),
            machine: Machine {
                os: "linux".into(),
                arch: "x86_64".into(),
                cpus: 2,
                cpu_model: Some("Test CPU".into()),
                threads_per_core: Some(1),
            },
        }
    }

    fn hz(
        build: &str,
        case: &str,
        strategy: &str,
        setting: &str,
        observed: Verdict,
        expected: Verdict,
    ) -> ResultRecord {
        let variant = build.split_once('-').map(|(_, v)| v);
        ResultRecord {
            environment: env(build, variant),
            data: RecordData::Hazard(HazardVerdict {
                hazard: case.into(),
                strategy: strategy.into(),
                isolation: Some(setting.into()),
                observed,
                expected,
                threat: None,
            }),
        }
    }

    fn bench(build: &str, op: &str, strategy: &str, interpreters: u32, ns: f64) -> ResultRecord {
        ResultRecord {
            environment: env(build, None),
            data: RecordData::Bench(BenchFigure {
                operation: op.into(),
                strategy: strategy.into(),
                threads: 1,
                interpreters,
                ns_per_op: Some(ns),
                instructions_per_op: None,
                scaling: None,
                ns_interval: None,
            }),
        }
    }

    fn err(m: &str) -> Verdict {
        Verdict::RuntimeError { message: m.into() }
    }
    fn undetected(h: &str) -> Verdict {
        Verdict::Undetected { how: h.into() }
    }
    fn na(w: &str) -> Verdict {
        Verdict::NotApplicable { why: w.into() }
    }

    fn snapshot(files: Vec<(&str, &str, Vec<ResultRecord>)>) -> Snapshot {
        Snapshot {
            sources: files
                .into_iter()
                .map(|(file, producer, records)| Source {
                    file: file.into(),
                    result: ResultFile::new(producer, records),
                })
                .collect(),
        }
    }

    fn render_in(spec: &str, snap: &Snapshot) -> String {
        let cx = Context {
            snapshot: snap,
            root: Path::new("/nonexistent"),
            page: "RFCs/x.md",
        };
        crate::render::markdown(&render(&Spec::parse(spec).unwrap(), &cx).unwrap())
    }

    #[test]
    fn specs_parse_and_refuse_unknown_arguments() {
        let s = Spec::parse("bench operations=bind,clone_drop strategies=unchecked").unwrap();
        assert_eq!(s.kind, "bench");
        assert_eq!(s.list("operations").unwrap(), ["bind", "clone_drop"]);
        assert!(Spec::parse("").is_err());
        assert!(Spec::parse("bench operations").is_err());
        assert!(Spec::parse("bench a=1 a=2").is_err());
        let snap = Snapshot::default();
        let cx = Context {
            snapshot: &snap,
            root: Path::new("/"),
            page: "docs/x.md",
        };
        let e = render(&Spec::parse("hazards strategy=tagged").unwrap(), &cx).unwrap_err();
        assert!(e.contains("no argument `strategy`"), "{e}");
        assert!(render(&Spec::parse("frobs").unwrap(), &cx)
            .unwrap_err()
            .contains("unknown table kind"));
        assert!(render(&Spec::parse("bench metric=joules").unwrap(), &cx).is_err());
    }

    #[test]
    fn an_empty_snapshot_is_not_measured_never_invented() {
        let snap = Snapshot::default();
        for spec in [
            "hazards",
            "hazard-matrix",
            "bench",
            "scaling",
            "handle-size",
        ] {
            let out = render_in(spec, &snap);
            assert!(out.starts_with("Not measured:"), "{spec}: {out}");
            assert!(!out.contains('|'), "{spec}: {out}");
        }
    }

    #[test]
    fn guarantees_hold_only_where_no_declared_verdict_is_undetected() {
        let with = |mut r: ResultRecord, threat: &str| {
            if let RecordData::Hazard(h) = &mut r.data {
                h.threat = Some(threat.into());
            }
            r
        };
        let snap = snapshot(vec![(
            "hazards-3.13.json",
            "interp-tests hazards",
            vec![
                with(hz("3.13", "H1", "tagged", "own-gil", err("bind: x"), err("bind: x")), "safe"),
                with(hz("3.13", "H13.once", "tagged", "own-gil", na("a"), na("a")), "safe"),
                with(hz("3.13", "H15", "tagged", "own-gil", err("bind: y"), err("bind: y")), "raw"),
                with(hz("3.13", "H1", "scoped", "own-gil", err("bind: x"), err("bind: x")), "safe"),
                with(hz("3.13", "H15", "scoped", "own-gil", undetected("z"), undetected("z")), "raw"),
                // Records without a threat (older snapshots) are left out.
                hz("3.13", "H2", "scoped", "own-gil", undetected("z"), undetected("z")),
            ],
        )]);
        let out = render_in("guarantees", &snap);
        let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows[0], "| a caller can | cases | `tagged` | `scoped` |", "{out}");
        assert_eq!(
            rows[1],
            "| safe | `H1` `H13.once` | **holds** (1 refused, 1 cannot arise) | **holds** (1 refused) |"
        );
        assert_eq!(rows[2], "| raw | `H15` | **holds** (1 refused) | not guaranteed: `H15` |");
        assert!(render_in("guarantees", &Snapshot::default()).starts_with("Not measured:"));
    }

    #[test]
    fn case_selection_takes_forms_with_their_hazard() {
        let l = Some(vec!["H2".to_string(), "H1.kept".to_string()]);
        assert!(case_selected(&l, "H2"));
        assert!(case_selected(&l, "H2.unattached"));
        assert!(case_selected(&l, "H1.kept"));
        assert!(!case_selected(&l, "H1"));
        assert!(!case_selected(&l, "H12"));
        assert!(case_selected(&None, "H12"));
    }

    #[test]
    fn labels_say_what_was_seen() {
        let up = "../";
        assert_eq!(
            label(&err("bind: belongs to"), &err("bind: x"), up),
            "error at `bind`"
        );
        assert_eq!(
            label(
                &err("load into brand: the handle belongs to interpreter 1, which has ended"),
                &err("x"),
                up
            ),
            "error at `load into brand` (owner ended)"
        );
        assert_eq!(
            label(
                &undetected("crash: killed by SIGABRT; stderr: free(): invalid pointer"),
                &undetected("x"),
                up
            ),
            "**undetected**: crash, error on stderr"
        );
        assert_eq!(
            label(&undetected("accepted: bound; wrong-interpreter: a probe ran [x; sys.gettotalrefcount() rose by 1]"), &undetected("x"), up),
            "**undetected**: ran in the wrong interpreter, references leaked"
        );
        assert_eq!(
            label(&undetected("accepted: bound"), &undetected("x"), up),
            "**undetected**: accepted"
        );
        assert_eq!(
            label(&na("deferred: queued"), &na("x"), up),
            "n/a (deferred)"
        );
        // No slug in the observation: the declared reason's slug.
        assert_eq!(
            label(
                &na("attached to the owner interpreter 1"),
                &na("owner: attached"),
                up
            ),
            "n/a (owner)"
        );
        assert_eq!(
            label(
                &Verdict::CompileError {
                    case: "compile-fail/tests/ui/a_b.rs".into()
                },
                &Verdict::CompileError { case: "x".into() },
                up
            ),
            "compile error ([`a_b`](../compile-fail/tests/ui/a_b.rs))"
        );
        assert_eq!(
            label(&na("serialised: none lost"), &undetected("x"), up),
            "n/a (serialised) **≠ declared**"
        );
    }

    #[test]
    fn hazard_cells_agree_or_say_where_each_verdict_was_seen() {
        let snap = snapshot(vec![
            (
                "docs/data/hazards-3.13.json",
                "interp-tests hazards",
                vec![
                    hz(
                        "3.13",
                        "H2",
                        "unchecked",
                        "own-gil",
                        undetected("crash: x"),
                        undetected("d"),
                    ),
                    hz(
                        "3.13",
                        "H2",
                        "unchecked",
                        "shared-gil",
                        undetected("wrong-interpreter: x"),
                        undetected("d"),
                    ),
                    hz(
                        "3.13",
                        "H2",
                        "tagged",
                        "own-gil",
                        na("deferred: x"),
                        na("deferred: d"),
                    ),
                    hz(
                        "3.13",
                        "H2",
                        "tagged",
                        "shared-gil",
                        na("deferred: x"),
                        na("deferred: d"),
                    ),
                    hz(
                        "3.13",
                        "H1",
                        "tagged",
                        "own-gil",
                        err("bind: x"),
                        err("bind: d"),
                    ),
                ],
            ),
            (
                "docs/data/hazards-3.13t.json",
                "interp-tests hazards",
                vec![
                    hz(
                        "3.13t",
                        "H2",
                        "unchecked",
                        "own-gil",
                        undetected("wrong-interpreter: x"),
                        undetected("d"),
                    ),
                    hz(
                        "3.13t",
                        "H2",
                        "tagged",
                        "own-gil",
                        na("deferred: x"),
                        na("deferred: d"),
                    ),
                ],
            ),
        ]);
        let out = render_in("hazards strategies=unchecked,tagged", &snap);
        assert!(
            out.starts_with("| case | `unchecked` | `tagged` |\n|---|---|---|\n"),
            "{out}"
        );
        // Ordered by hazard number; a cell with no record is not measured.
        assert!(
            out.contains("| `H1` | not measured | error at `bind` |\n"),
            "{out}"
        );
        assert!(out.contains(
            "| `H2` | **undetected**: crash on `3.13` (own-gil); ran in the wrong interpreter on \
             `3.13` (shared-gil), `3.13t` | n/a (deferred) |\n"
        ), "{out}");
        assert!(out.contains("Source: `docs/data/hazards-3.13.json`, `docs/data/hazards-3.13t.json` (written by `interp-tests hazards`)."), "{out}");
        assert!(
            out.contains(
                "Builds: `3.13`: CPython 3.13.15, GIL; `3.13t`: CPython 3.13.15, free-threaded."
            ),
            "{out}"
        );
        assert!(out.contains("PyO3 0.28.3. Machine: linux x86_64, 2 logical CPUs (Test CPU), 1 thread(s) per core."), "{out}");
        assert!(out.contains("](../docs/hazards.md)"), "{out}");

        let cases = render_in("hazards cases=H1 builds=3.13t", &snap);
        assert!(cases.starts_with("Not measured"), "{cases}");

        let matrix = render_in("hazard-matrix", &snap);
        assert!(
            matrix.contains(
                "#### `3.13`: CPython 3.13.15, GIL\n\n| case | setting | `unchecked` | `tagged` |"
            ),
            "{matrix}"
        );
        assert!(matrix.contains("| `H2` | shared-gil | **undetected**: ran in the wrong interpreter | n/a (deferred) |"), "{matrix}");
        assert!(matrix.find("#### `3.13`").unwrap() < matrix.find("#### `3.13t`").unwrap());
    }

    #[test]
    fn target_tables_judge_the_snapshot_with_the_report_checks() {
        let snap = snapshot(vec![(
            "docs/data/bench.json",
            "cargo xtask bench",
            vec![
                bench("3.13", "bind", "unchecked", 1, 0.25),
                bench("3.13", "bind", "tagged", 1, 0.5),
                bench("3.13", "bind", "unchecked", 2, 0.25),
                bench("3.13", "bind", "tagged", 2, 9.0),
                bench("3.13", "reference", "PyThreadState_GetUnchecked", 2, 3.0),
                bench("3.13t", "bind", "unchecked", 1, 0.25),
                bench("3.13t", "bind", "tagged", 1, 1.0),
            ],
        )]);
        let out = render_in("targets strategies=tagged builds=3.13", &snap);
        assert!(out.contains("| target | build | measured | verdict |"), "{out}");
        assert!(
            out.contains("| tagged bind, one interpreter: at most +0.5 ns over unchecked | `3.13` | +0.25 ns (0.50 vs 0.25) | met |"),
            "{out}"
        );
        assert!(out.contains("allowance 3.50 ns | **missed** |"), "{out}");
        assert!(!out.contains("`3.13t`"), "{out}");
        assert!(render_in("targets strategies=branded", &snap).contains("Not measured"));
        let cx = Context { snapshot: &snap, root: Path::new("/nonexistent"), page: "RFCs/x.md" };
        assert!(render(&Spec::parse("targets cases=H1").unwrap(), &cx).is_err(), "a bad argument is refused");
    }

    #[test]
    fn bench_tables_show_ratios_provenance_and_gaps() {
        let snap = snapshot(vec![(
            "docs/data/bench.json",
            "cargo xtask bench --quick",
            vec![
                bench("3.13", "bind", "unchecked", 1, 0.25),
                bench("3.13", "bind", "tagged", 1, 5.0),
                bench("3.13", "bind", "unchecked", 2, 0.5),
                bench("3.13", "reference", "PyThreadState_GetUnchecked", 1, 3.0),
                bench("3.13", "send", "tagged", 1, 1234567.0),
            ],
        )]);
        let out = render_in(
            "bench operations=bind,send strategies=unchecked,tagged,branded",
            &snap,
        );
        assert!(out.starts_with("**Quick run**"), "{out}");
        assert!(
            out.contains(
                "| build | interpreters | operation | `unchecked` | `tagged` | `branded` |"
            ),
            "{out}"
        );
        assert!(
            out.contains("| `3.13` | 1 | `bind` | 0.25 | 5.00 (×20.00) | not measured |"),
            "{out}"
        );
        assert!(
            out.contains("| `3.13` | 1 | `send` | not measured | 1,234,567 | not measured |"),
            "{out}"
        );
        assert!(
            out.contains("| `3.13` | 2 | `bind` | 0.50 | not measured | not measured |"),
            "{out}"
        );
        assert!(
            out.contains("written by `cargo xtask bench --quick`: **a quick run"),
            "{out}"
        );
        // Reference costs only when asked for, with no baseline.
        assert!(!out.contains("PyThreadState_GetUnchecked"));
        let refs = render_in("bench operations=reference baseline=none", &snap);
        assert!(
            refs.contains("| build | interpreters | operation | `PyThreadState_GetUnchecked` |"),
            "{refs}"
        );
        assert!(
            refs.contains("| `3.13` | 1 | `reference` | 3.00 |"),
            "{refs}"
        );
        assert!(!refs.contains("(×"), "{refs}");
        let none = render_in("bench metric=instructions", &snap);
        assert!(
            none.starts_with(
                "Not measured: the snapshot in `docs/data/` has no instruction counts"
            ),
            "{none}"
        );
    }

    #[test]
    fn scaling_and_handle_sizes_render_when_present() {
        let mut s1 = bench("3.13t", "threads/independent", "tagged", 1, 10.0);
        let mut s2 = bench("3.13t", "threads/independent", "tagged", 1, 6.0);
        if let RecordData::Bench(b) = &mut s1.data {
            b.scaling = Some(1.0);
        }
        if let RecordData::Bench(b) = &mut s2.data {
            b.scaling = Some(1.7);
            b.threads = 2;
        }
        let size = ResultRecord {
            environment: env("3.13", None),
            data: RecordData::HandleSize(HandleSize {
                strategy: "tagged".into(),
                type_name: "interpsafe::strategy::tagged::TaggedHandle".into(),
                size: 16,
                option_size: 16,
            }),
        };
        let snap = snapshot(vec![
            ("docs/data/bench.json", "cargo xtask bench", vec![s1, s2]),
            ("docs/data/bench.json", "cargo xtask bench", vec![size]),
        ]);
        let out = render_in("scaling", &snap);
        assert!(
            out.contains("| `3.13t` | `threads/independent` | `tagged` | ×1.00 | ×1.70 |"),
            "{out}"
        );
        assert!(!out.contains("Quick run"));
        let out = render_in("handle-size", &snap);
        assert!(
            out.contains("| `tagged` | `TaggedHandle` | 16 B (16 B as `Option`) |"),
            "{out}"
        );
        // Scaling figures are not bench cells.
        assert!(render_in("bench", &snap).starts_with("Not measured"));
    }

    #[test]
    fn send_sync_tables_come_from_the_cells_of_all_three_rule_sets() {
        let cell = |rules: &str, sync: bool, hazard: bool| ResultRecord {
            environment: env("3.13", None),
            data: RecordData::SendSync(SendSyncCell {
                type_name: "A<'s>".into(),
                stands_for: "a | thing".into(),
                rules: rules.into(),
                send: true,
                sync,
                hazard,
                cases: vec![interpsafe_results::CompileCase { path: "ui/a.rs".into(), must_compile: false }],
                note: "why".into(),
            }),
        };
        // Out of column order on purpose: the columns follow the rule sets, not the file.
        let cells = vec![cell("own-gil", true, true), cell("gil", false, false), cell("free-threaded", true, false)];
        let snap = snapshot(vec![("docs/data/send-sync.json", "cargo xtask docs", cells.clone())]);
        let out = render_in("send-sync", &snap);
        assert!(out.contains("| `A<'s>` | a \\| thing | Send, !Sync | Send + Sync | Send + Sync (hazard) |\n"), "{out}");
        assert!(
            out.contains("| `A<'s>` | own-gil | yes | yes | static assertion; compile-fail: [`ui/a.rs`](../compile-fail/tests/ui/a.rs) | **hazard**: why |\n"),
            "{out}"
        );
        assert!(out.find("| gil |").unwrap() < out.find("| own-gil |").unwrap(), "{out}");
        let cx = Context { snapshot: &snap, root: Path::new("/"), page: "RFCs/x.md" };
        assert!(render(&Spec::parse("send-sync-matrix types=B").unwrap(), &cx).is_err());
        let partial = snapshot(vec![("docs/data/send-sync.json", "cargo xtask docs", cells[..2].to_vec())]);
        let cx = Context { snapshot: &partial, ..cx };
        assert!(render(&Spec::parse("send-sync").unwrap(), &cx).unwrap_err().contains("lacks a rule set"));
    }

    #[test]
    fn figures_are_grouped_and_rounded_by_size() {
        assert_eq!(figure(0.2345), "0.23");
        assert_eq!(figure(12.345), "12.3");
        assert_eq!(figure(123.45), "123");
        assert_eq!(figure(1001305.4), "1,001,305");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
    }
}
