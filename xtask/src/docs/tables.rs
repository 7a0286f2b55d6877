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
    build_rank, hazard_number, strategy_rank, HazardVerdict, InterpreterBuild, Machine, RecordData,
    ResultRecord, SendSyncCell, Verdict, BASELINE, REFERENCE,
};

use super::snapshot::{Snapshot, SEND_SYNC};
use crate::render::{Block, Table};
use crate::targets::{Figures, Key, Metric};

/// Which threads can reach one object at once: the Send/Sync model's rule sets, in column
/// order: name, column heading, whether its build needs a free-threaded interpreter, and the
/// cargo features of its build.
pub const RULE_SETS: [(&str, &str, bool, &[&str]); 3] = [
    ("gil", "GIL build", false, &[]),
    ("free-threaded", "free-threaded build", true, &[]),
    ("own-gil", "own-GIL subinterpreters", false, &["own-gil-rules"]),
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
        let kind = words.next().ok_or("no table kind (e.g. `hazards`, `bench`)")?;
        let mut args = BTreeMap::new();
        for word in words {
            let (k, v) =
                word.split_once('=').ok_or(format!("argument `{word}` is not key=value"))?;
            if args.insert(k.to_string(), v.to_string()).is_some() {
                return Err(format!("argument `{k}` is given twice"));
            }
        }
        Ok(Spec { kind: kind.to_string(), args })
    }

    /// A comma-separated list argument.
    fn list(&self, key: &str) -> Option<Vec<String>> {
        let items = |v: &str| {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        };
        self.args.get(key).map(|v| items(v))
    }
}

/// What a table is rendered against.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The snapshot.
    pub snapshot: &'a Snapshot,
    /// The workspace root.
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

/// A table kind's renderer.
type Kind = fn(&Spec, &Context<'_>) -> Result<Vec<Block>, String>;

/// Every table kind, with the arguments it takes (besides `strategies` and `builds`, which all
/// kinds of results records take).
const KINDS: [(&str, &[&str], Kind); 9] = [
    ("hazards", &["cases"], hazards),
    ("hazard-matrix", &["cases"], hazard_matrix),
    ("bench", &["operations", "interpreters", "metric", "baseline"], bench),
    ("scaling", &["operations"], scaling),
    ("handle-size", &[], handle_size),
    ("targets", &[], targets),
    ("send-sync", &["types"], send_sync),
    ("send-sync-matrix", &["types"], send_sync_matrix),
    ("guarantees", &[], guarantees),
];

/// Renders the table `spec` asks for. Arguments the kind does not take are refused, so that a
/// typo cannot silently widen a table.
pub fn render(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let Some((kind, allowed, f)) = KINDS.iter().find(|k| k.0 == spec.kind) else {
        let known: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
        return Err(format!("unknown table kind `{}` (known: {})", spec.kind, known.join(", ")));
    };
    let common: &[&str] =
        if kind.starts_with("send-sync") { &[] } else { &["strategies", "builds"] };
    let takes = || common.iter().chain(allowed.iter());
    if let Some(k) = spec.args.keys().find(|k| !takes().any(|a| a == k)) {
        let takes: Vec<&str> = takes().copied().collect();
        let takes = takes.join(", ");
        return Err(format!("`{kind}` tables take no argument `{k}` (they take: {takes})"));
    }
    f(spec, cx)
}

// ---------------------------------------------------------------------------------------------
// Shared pieces: selection, ordering, provenance, number formats.

/// Whether `list` (absent: everything) admits `name`.
fn admits(list: &Option<Vec<String>>, name: &str) -> bool {
    list.as_ref().is_none_or(|l| l.iter().any(|x| x == name))
}

/// Whether a case ID is selected: `H2` selects `H2` and its forms (`H2.kept`); `H2.kept` only
/// itself.
fn case_selected(list: &Option<Vec<String>>, id: &str) -> bool {
    let hazard = id.split('.').next();
    let matches = |want: &String| id == want || (!want.contains('.') && hazard == Some(want));
    list.as_ref().is_none_or(|l| l.iter().any(matches))
}

/// The snapshot's records of the builds and strategies the spec admits.
fn selected<'a>(spec: &Spec, cx: &Context<'a>) -> impl Iterator<Item = &'a ResultRecord> {
    let (strategies, builds) = (spec.list("strategies"), spec.list("builds"));
    cx.snapshot.records().map(|(_, r)| r).filter(move |r| {
        let strategy = match &r.data {
            RecordData::Hazard(h) => &h.strategy,
            RecordData::Bench(b) => &b.strategy,
            RecordData::HandleSize(h) => &h.strategy,
            _ => return false,
        };
        admits(&strategies, strategy) && admits(&builds, &r.environment.interpreter.name)
    })
}

/// The distinct items, in order of first appearance.
fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The distinct builds of `records`, in the toolkit's build order.
fn builds_of<'a>(records: impl IntoIterator<Item = &'a ResultRecord>) -> Vec<&'a InterpreterBuild> {
    let mut builds = distinct(records.into_iter().map(|r| &r.environment.interpreter));
    builds.sort_by_key(|b| build_rank(b));
    builds
}

/// The strategies of `present`, restricted to and ordered by the `strategies` argument if given,
/// else in the toolkit's order.
fn columns<'a>(spec: &Spec, present: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    spec.list("strategies").unwrap_or_else(|| {
        let mut all: Vec<String> = distinct(present.into_iter().map(String::from));
        all.sort_by_key(|s| strategy_rank(s));
        all
    })
}

/// A header row: `fixed` headings, then a code-formatted heading per strategy.
fn head(fixed: &[&str], strategies: &[String]) -> Table {
    let quoted = strategies.iter().map(|s| format!("`{s}`"));
    Table::new(fixed.iter().map(|h| h.to_string()).chain(quoted))
}

/// How a build is described: `3.13t`: CPython 3.13.15, free-threaded.
fn describe_build(b: &InterpreterBuild) -> String {
    let kind = if b.free_threaded { "free-threaded" } else { "GIL" };
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

/// The provenance paragraph of a table generated from `used`: the snapshot files by producer,
/// the builds, PyO3 versions and machines, each in order of first appearance (builds sorted).
fn provenance<'a>(cx: &Context<'a>, used: impl IntoIterator<Item = &'a ResultRecord>) -> Block {
    let used: Vec<&ResultRecord> = used.into_iter().collect();
    let file = |r: &&ResultRecord| {
        let s = cx.snapshot.source_of(r);
        (s.result.producer.as_str(), s.is_quick(), s.file.as_str())
    };
    let sources = distinct(used.iter().map(file));
    let files: Vec<String> = distinct(sources.iter().map(|s| (s.0, s.1)))
        .into_iter()
        .map(|(producer, quick)| {
            let of = sources.iter().filter(|s| s.0 == producer);
            let list: Vec<String> = of.map(|s| format!("`{}`", s.2)).collect();
            let quick = match quick {
                true => ": **a quick run, smoke numbers to develop with, not to cite**",
                false => "",
            };
            format!("{} (written by `{producer}`{quick})", list.join(", "))
        })
        .collect();
    let builds: Vec<String> =
        builds_of(used.iter().copied()).into_iter().map(describe_build).collect();
    let pyo3 = distinct(used.iter().map(|r| r.environment.pyo3_version.as_str()));
    let machines = distinct(used.iter().map(|r| &r.environment.machine));
    let machines: Vec<String> = machines.into_iter().map(describe_machine).collect();
    let (files, builds, pyo3, machines) =
        (files.join("; "), builds.join("; "), pyo3.join(", "), machines.join("; "));
    Block::Text(format!("Source: {files}. Builds: {builds}. PyO3 {pyo3}. Machine: {machines}."))
}

/// The line printed instead of a table that has no figures at all.
fn not_measured(what: &str, how: &str) -> Result<Vec<Block>, String> {
    Ok(vec![Block::Text(format!(
        "Not measured: the snapshot in `docs/data/` has no {what}. Produce them with `{how}`, then \
         copy them in with `cargo xtask docs --refresh`."
    ))])
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
    match v {
        v if v >= 1000.0 => grouped(v.round() as u64),
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Hazard verdicts.

/// One hazard verdict as the tables use it.
#[derive(Debug, Clone, Copy)]
struct Instance<'a> {
    r: &'a ResultRecord,
    h: &'a HazardVerdict,
    setting: &'a str,
}

impl Instance<'_> {
    fn build(&self) -> &InterpreterBuild {
        &self.r.environment.interpreter
    }
}

/// The hazard verdicts the spec selects, in snapshot order.
fn instances<'a>(spec: &Spec, cx: &Context<'a>) -> Vec<Instance<'a>> {
    let cases = spec.list("cases");
    let hazard = |r: &'a ResultRecord| match &r.data {
        RecordData::Hazard(h) if case_selected(&cases, &h.hazard) => {
            Some(Instance { r, h, setting: h.isolation.as_deref().unwrap_or("-") })
        }
        _ => None,
    };
    selected(spec, cx).filter_map(hazard).collect()
}

/// The case IDs of `items`, ordered by hazard number, forms in order of first appearance (a
/// stable sort keeps each hazard's forms in the order the suite ran them).
fn case_order<'a>(items: &[Instance<'a>]) -> Vec<&'a str> {
    let mut cases = distinct(items.iter().map(|i| i.h.hazard.as_str()));
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
    let mut words: Vec<&str> =
        WORDS.iter().filter(|(k, _)| slugs.contains(k)).map(|w| w.1).collect();
    if how.contains("gettotalrefcount() rose") {
        words.push("references leaked");
    }
    if words.is_empty() {
        words.push(if slugs.contains(&"accepted") { "accepted" } else { "see the JSON" });
    }
    words
}

/// A verdict in a few words.
fn label(observed: &Verdict, expected: &Verdict, up: &str) -> String {
    let text = match observed {
        Verdict::CompileError { case } => {
            let stem = Path::new(case).file_stem().and_then(|s| s.to_str()).unwrap_or(case);
            format!("compile error ([`{stem}`]({up}{case}))")
        }
        Verdict::RuntimeError { message } => {
            let op = message.split(':').next().unwrap_or(message).trim();
            let ended = if message.contains("has ended") { " (owner ended)" } else { "" };
            format!("error at `{op}`{ended}")
        }
        Verdict::Undetected { how } => format!("**undetected**: {}", seen(how).join(", ")),
        Verdict::NotApplicable { why } => {
            let declared = match expected {
                Verdict::NotApplicable { why } => slug(why),
                _ => None,
            };
            slug(why).or(declared).map_or("n/a".to_string(), |s| format!("n/a ({s})"))
        }
    };
    match observed.kind() == expected.kind() {
        true => text,
        false => format!("{text} **≠ declared**"),
    }
}

/// One cell: the verdicts of `items` (one case, one strategy, every build and setting). If they
/// differ, each verdict names where it was seen: a build alone when it covers every setting of
/// that build in the cell, else the build with its settings. Where every verdict is
/// "undetected", it says so once and lists what was seen where.
fn summarise(items: &[&Instance<'_>], up: &str) -> String {
    const UNDETECTED: &str = "**undetected**: ";
    let labels: Vec<String> =
        items.iter().map(|i| label(&i.h.observed, &i.h.expected, up)).collect();
    let groups = distinct(labels.iter());
    match groups.len() {
        0 => return "not measured".to_string(),
        1 => return labels[0].clone(),
        _ => {}
    }
    let all_undetected = groups.iter().all(|l| l.starts_with(UNDETECTED));
    let builds = builds_of(items.iter().map(|i| i.r));
    let parts: Vec<String> = groups
        .iter()
        .map(|&l| {
            let places: Vec<String> = builds
                .iter()
                .filter_map(|&b| {
                    let on_b = items.iter().zip(&labels).filter(|(i, _)| i.build() == b);
                    let all = on_b.clone().count();
                    let here: Vec<&str> = on_b.filter(|x| x.1 == l).map(|x| x.0.setting).collect();
                    match here.len() {
                        0 => None,
                        n if n == all => Some(format!("`{}`", b.name)),
                        _ => Some(format!("`{}` ({})", b.name, here.join(", "))),
                    }
                })
                .collect();
            let l = if all_undetected { &l[UNDETECTED.len()..] } else { l };
            format!("{l} on {}", places.join(", "))
        })
        .collect();
    let prefix = if all_undetected { UNDETECTED } else { "" };
    format!("{prefix}{}", parts.join("; "))
}

/// The legend under every hazard table.
fn hazard_legend(up: &str, per_setting: bool) -> Block {
    let scope = if per_setting {
        "Cells: what the hazard suite observed for that case, setting and strategy on that build."
    } else {
        "Cells: what the hazard suite observed for that case and strategy on every build and \
         setting in the snapshot; where they differ, each verdict says where it was seen."
    };
    Block::Text(format!(
        "{scope} `error at op`: a clear runtime error from operation `op`, and the process \
         survives; **undetected**: not caught, with what the suite saw instead (the suite observes \
         the wrong interpreter directly through probe objects, since a crash may or may not \
         follow); n/a (why): the hazard cannot arise, and why; compile error: the misuse does not \
         compile, shown by the linked compile-fail case. **≠ declared** marks a cell where the \
         strategy declared another kind of verdict: the suite fails on it, so the snapshot comes \
         from a failing run there. Cases and settings: [the hazard catalogue]({up}docs/hazards.md)."
    ))
}

/// The rows of a hazard table over `items`: per case (and per setting if `per_setting`), one
/// cell per strategy.
fn hazard_rows(
    items: &[Instance<'_>],
    strategies: &[String],
    per_setting: bool,
    up: &str,
) -> Table {
    let fixed: &[&str] = if per_setting { &["case", "setting"] } else { &["case"] };
    let mut table = head(fixed, strategies);
    for case in case_order(items) {
        let of_case: Vec<&Instance<'_>> = items.iter().filter(|i| i.h.hazard == case).collect();
        let settings = match per_setting {
            true => distinct(of_case.iter().map(|i| Some(i.setting))),
            false => vec![None],
        };
        for setting in settings {
            let mut cells = vec![format!("`{case}`")];
            cells.extend(setting.map(str::to_string));
            for s in strategies {
                let here = |i: &&&Instance<'_>| {
                    i.h.strategy == *s && setting.is_none_or(|x| x == i.setting)
                };
                let cell: Vec<&Instance<'_>> = of_case.iter().filter(here).copied().collect();
                cells.push(summarise(&cell, up));
            }
            table.push(cells);
        }
    }
    table
}

/// `hazards`: cases by strategies, each cell summarised over builds and settings.
fn hazards(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let items = instances(spec, cx);
    if items.is_empty() {
        return not_measured("hazard verdicts for this selection", "cargo xtask hazards");
    }
    let strategies = columns(spec, items.iter().map(|i| i.h.strategy.as_str()));
    let table = hazard_rows(&items, &strategies, false, &cx.up());
    let used = provenance(cx, items.iter().map(|i| i.r));
    Ok(vec![Block::Table(table), hazard_legend(&cx.up(), false), used])
}

/// `hazard-matrix`: per build, cases and settings by strategies.
fn hazard_matrix(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let items = instances(spec, cx);
    if items.is_empty() {
        return not_measured("hazard verdicts", "cargo xtask hazards");
    }
    let mut out = Vec::new();
    for b in builds_of(items.iter().map(|i| i.r)) {
        let mine: Vec<Instance<'_>> = items.iter().filter(|i| i.build() == b).copied().collect();
        let strategies = columns(spec, mine.iter().map(|i| i.h.strategy.as_str()));
        let table = hazard_rows(&mine, &strategies, true, &cx.up());
        let used = provenance(cx, mine.iter().map(|i| i.r));
        out.extend([Block::Heading(4, describe_build(b)), Block::Table(table), used]);
    }
    out.push(hazard_legend(&cx.up(), true));
    Ok(out)
}

/// `guarantees`: what each strategy guarantees against each caller capability (the threat
/// model's rows), from the verdicts the strategies *declare* for the catalogue's cases, across
/// every build in the snapshot. The hazard suite fails wherever a run differs from a
/// declaration, so the declarations are what ran. A cell holds when no declared verdict of the
/// row is "undetected" on any build; it names the cases that are, otherwise.
fn guarantees(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let mut items = instances(spec, cx);
    items.retain(|i| i.h.threat.is_some());
    if items.is_empty() {
        return not_measured("hazard verdicts with threat-model rows", "cargo xtask hazards");
    }
    let strategies = columns(spec, items.iter().map(|i| i.h.strategy.as_str()));
    let mut table = head(&["a caller can", "cases"], &strategies);
    for threat in distinct(items.iter().map(|i| i.h.threat.as_deref())) {
        let of_threat: Vec<Instance<'_>> =
            items.iter().filter(|i| i.h.threat.as_deref() == threat).copied().collect();
        let cases: Vec<String> = case_order(&of_threat).iter().map(|c| format!("`{c}`")).collect();
        let mut cells = vec![threat.unwrap_or_default().to_string(), cases.join(" ")];
        for s in &strategies {
            let mine: Vec<&Verdict> =
                of_threat.iter().filter(|i| i.h.strategy == *s).map(|i| &i.h.expected).collect();
            let open = of_threat.iter().filter(|i| {
                i.h.strategy == *s && matches!(i.h.expected, Verdict::Undetected { .. })
            });
            let mut open: Vec<&str> = open.map(|i| i.h.hazard.as_str()).collect();
            open.sort_by_key(|c| (hazard_number(c), c.to_string()));
            open.dedup();
            let count = |f: fn(&Verdict) -> bool| mine.iter().filter(|v| f(v)).count();
            let how = [
                (count(|v| matches!(v, Verdict::RuntimeError { .. })), "refused"),
                (count(|v| matches!(v, Verdict::CompileError { .. })), "do not compile"),
                (count(|v| matches!(v, Verdict::NotApplicable { .. })), "cannot arise"),
            ];
            let how: Vec<String> =
                how.iter().filter(|h| h.0 > 0).map(|(n, w)| format!("{n} {w}")).collect();
            let ids: Vec<String> = open.iter().map(|c| format!("`{c}`")).collect();
            cells.push(match (mine.is_empty(), open.is_empty()) {
                (true, _) => "not run".to_string(),
                (false, true) => format!("**holds** ({})", how.join(", ")),
                (false, false) => format!("not guaranteed: {}", ids.join(" ")),
            });
        }
        table.push(cells);
    }
    let names: Vec<String> =
        builds_of(items.iter().map(|i| i.r)).iter().map(|b| format!("`{}`", b.name)).collect();
    let note = format!(
        "Each cell counts the declared verdicts of the row's cells (case × setting × build, on \
         {}); the hazard suite ran every one and failed on any difference. \"not \
         guaranteed\" names the cases the strategy declares undetected.",
        names.join(", ")
    );
    let used = provenance(cx, items.iter().map(|i| i.r));
    Ok(vec![Block::Table(table), Block::Text(note), used])
}

// ---------------------------------------------------------------------------------------------
// Bench figures.

/// The paragraph that opens a table of quick-run figures.
fn quick_note(cx: &Context<'_>, used: &[&ResultRecord], text: &str) -> Option<Block> {
    let quick = used.iter().any(|r| cx.snapshot.source_of(r).is_quick());
    quick.then(|| Block::Text(text.to_string()))
}

/// `bench`: operations by strategies, per build and interpreter count, with ratios to a
/// baseline strategy.
fn bench(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let (metric, what, unit) = match spec.args.get("metric").map_or("ns", String::as_str) {
        "ns" => (
            Metric::Ns,
            "wall-clock figures",
            "wall-clock nanoseconds per operation (criterion's point estimate)",
        ),
        "instructions" => (
            Metric::Instructions,
            "instruction counts",
            "instructions per operation (callgrind, through gungraun)",
        ),
        other => return Err(format!("metric `{other}` is neither `ns` nor `instructions`")),
    };
    let number = |n: &String| n.parse().map_err(|_| format!("interpreters: `{n}` is not a number"));
    let counts =
        spec.list("interpreters").map(|l| l.iter().map(number).collect::<Result<Vec<u32>, _>>());
    let counts = counts.transpose()?;
    let baseline = spec.args.get("baseline").map_or(BASELINE, String::as_str);
    let operations = spec.list("operations");
    let figures = Figures::new(selected(spec, cx));
    let wanted = |k: &Key| {
        let op = operations.as_ref().map_or(k.3 != REFERENCE, |l| l.contains(&k.3));
        k.0 == metric && op && counts.as_ref().is_none_or(|l| l.contains(&k.2))
    };
    let mut figs: Vec<_> = figures.0.iter().filter(|(k, _)| wanted(k)).collect();
    if figs.is_empty() {
        return not_measured(&format!("{what} for this selection"), "cargo xtask bench");
    }
    let used: Vec<&ResultRecord> = figs.iter().map(|(_, f)| f.record).collect();
    let columns = columns(spec, figs.iter().map(|(k, _)| k.4.as_str()));
    figs.sort_by_key(|(_, f)| f.seq);
    let ops = operations.unwrap_or_else(|| distinct(figs.iter().map(|(k, _)| k.3.clone())));
    let mut table = head(&["build", "interpreters", "operation"], &columns);
    for b in builds_of(used.iter().copied()) {
        let counts: BTreeSet<u32> =
            figs.iter().filter(|(k, _)| k.1 == b.name).map(|(k, _)| k.2).collect();
        for (n, op) in counts.iter().flat_map(|n| ops.iter().map(move |op| (*n, op))) {
            let get =
                |s: &str| figures.0.get(&(metric, b.name.clone(), n, op.clone(), s.to_string()));
            let base = get(baseline).map(|f| f.value).filter(|v| *v > 0.0 && baseline != "none");
            let mut cells = vec![format!("`{}`", b.name), n.to_string(), format!("`{op}`")];
            for s in &columns {
                cells.push(match get(s) {
                    None => "not measured".to_string(),
                    Some(f) => {
                        // The spread, where recorded (criterion's confidence interval).
                        let spread = f.spread.map_or(String::new(), |i| {
                            format!(" [{}–{}]", figure(i.low), figure(i.high))
                        });
                        match base.filter(|_| s != baseline) {
                            Some(base) => {
                                format!("{}{spread} (×{:.2})", figure(f.value), f.value / base)
                            }
                            None => figure(f.value) + &spread,
                        }
                    }
                });
            }
            table.push(cells);
        }
    }
    let ratio = match baseline {
        "none" => String::new(),
        _ => format!(" (×r): the ratio to `{baseline}` on the same row."),
    };
    let spread = match figs.iter().any(|(_, f)| f.spread.is_some()) {
        true => " [a–b]: criterion's 95% confidence interval.",
        false => "",
    };
    let note = format!(
        "Cells: {unit}.{ratio}{spread} interpreters: 1 = only the main interpreter has ever entered toolkit \
         code (the tagged strategy's fast path is on); 2 = an own-GIL subinterpreter is alive as \
         well (the fast path is off); the operation runs in main either way. not measured: the \
         snapshot has no such figure."
    );
    let quick =
        "**Quick run**: these figures come from `cargo xtask bench --quick` (short warm-up and \
                 measurement). They show the shape of the costs and are not figures to cite.";
    let quick = quick_note(cx, &used, quick);
    Ok(quick
        .into_iter()
        .chain([Block::Table(table), Block::Text(note), provenance(cx, used)])
        .collect())
}

/// `scaling`: throughput with N threads (or interpreters) over throughput with one.
fn scaling(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let operations = spec.list("operations");
    let figures = Figures::new(selected(spec, cx));
    let figs =
        figures.0.iter().filter(|(k, _)| k.0 == Metric::Scaling && admits(&operations, &k.3));
    let figs: BTreeMap<_, _> = figs
        .map(|(k, f)| {
            (
                (
                    build_rank(&f.record.environment.interpreter),
                    k.3.as_str(),
                    strategy_rank(&k.4),
                    k.2,
                ),
                f,
            )
        })
        .collect();
    if figs.is_empty() {
        return not_measured("thread-scaling figures", "cargo xtask bench");
    }
    let threads: BTreeSet<u32> = figs.keys().map(|k| k.3).collect();
    let headings: Vec<String> = threads.iter().map(|t| format!("{t} thread(s)")).collect();
    let mut table =
        Table::new(["build", "scenario", "strategy"].map(String::from).into_iter().chain(headings));
    for (b, op, s) in distinct(figs.keys().map(|(b, o, s, _)| (b, o, s))) {
        let mut cells = vec![format!("`{}`", b.1), format!("`{op}`"), format!("`{}`", s.1)];
        for t in &threads {
            let key = (b.clone(), *op, s.clone(), *t);
            cells
                .push(figs.get(&key).map_or("not measured".into(), |f| format!("×{:.2}", f.value)));
        }
        table.push(cells);
    }
    let used: Vec<&ResultRecord> = figs.values().map(|f| f.record).collect();
    let note = "Cells: throughput with that many threads (each attached to the main interpreter, or \
                each to its own own-GIL interpreter, as the scenario says) over the throughput with \
                one. The `control` scenario is a pure-Rust loop measured in the same run: the \
                machine's own ceiling.";
    let quick =
        "**Quick run**: scaling measured by `cargo xtask bench --quick`; not figures to cite.";
    let quick = quick_note(cx, &used, quick);
    Ok(quick
        .into_iter()
        .chain([Block::Table(table), Block::Text(note.into()), provenance(cx, used)])
        .collect())
}

/// `handle-size`: each strategy's handle, per build.
fn handle_size(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let sizes: Vec<_> = selected(spec, cx)
        .filter_map(|r| match &r.data {
            RecordData::HandleSize(h) => Some((r, h)),
            _ => None,
        })
        .collect();
    if sizes.is_empty() {
        return not_measured("handle sizes", "cargo xtask bench");
    }
    let builds = builds_of(sizes.iter().map(|x| x.0));
    let mut strategies = distinct(sizes.iter().map(|x| x.1.strategy.as_str()));
    strategies.sort_by_key(|s| strategy_rank(s));
    let mut table = Table::new(["strategy", "handle type"].map(String::from));
    table.head.extend(builds.iter().map(|b| format!("`{}`", b.name)));
    for s in strategies {
        let rank = |r: &ResultRecord| build_rank(&r.environment.interpreter);
        let of = |b: &&InterpreterBuild| {
            sizes.iter().find(|(r, h)| h.strategy == s && rank(r) == build_rank(b))
        };
        let first = builds.iter().find_map(of).map_or("", |x| x.1.type_name.as_str());
        let mut cells =
            vec![format!("`{s}`"), format!("`{}`", first.rsplit("::").next().unwrap_or(first))];
        for b in &builds {
            cells.push(of(b).map_or("not measured".into(), |(_, h)| {
                format!("{} B ({} B as `Option`)", h.size, h.option_size)
            }));
        }
        table.push(cells);
    }
    let note =
        "Cells: `size_of` the strategy's handle type, and of `Option` of it (equal when the \
                handle keeps the pointer's niche).";
    Ok(vec![
        Block::Table(table),
        Block::Text(note.into()),
        provenance(cx, sizes.iter().map(|x| x.0)),
    ])
}

/// `targets`: the performance targets ([`crate::targets::TARGETS`]), judged on the snapshot's
/// bench figures by the same checks `cargo xtask bench` prints, so a page never states a verdict
/// the figures do not give. `strategies` keeps the targets whose text starts with one of them.
fn targets(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let (strategies, builds) = (spec.list("strategies"), spec.list("builds"));
    let records = cx.snapshot.records().map(|(_, r)| r).filter(|r| {
        matches!(r.data, RecordData::Bench(_)) && admits(&builds, &r.environment.interpreter.name)
    });
    let records: Vec<&ResultRecord> = records.collect();
    let mut checks = crate::targets::judge(records.iter().copied());
    let about = |target: &str| {
        strategies.as_ref().is_none_or(|l| l.iter().any(|s| target.starts_with(&format!("{s} "))))
    };
    checks.retain(|c| about(&c.target));
    if checks.is_empty() {
        return not_measured("performance targets", "cargo xtask bench");
    }
    let mut table = Table::new(["target", "build", "measured", "verdict"]);
    for c in checks {
        let verdict = if c.verdict == "missed" { "**missed**".to_string() } else { c.verdict };
        table.push(vec![c.target, format!("`{}`", c.build), c.measured, verdict]);
    }
    let note = "Each target is judged by the checks `cargo xtask bench` prints at the end of its \
         console output, as `xtask/src/targets.rs` words them: the per-operation targets against \
         `unchecked` in the same bench, the scaling targets against the pure-Rust control loop \
         of the same scaling run (capped at ×2.00: two threads cannot do more than twice the \
         work of one).";
    Ok(vec![Block::Table(table), Block::Text(note.into()), provenance(cx, records)])
}

// ---------------------------------------------------------------------------------------------
// Send/Sync cells.

/// The Send/Sync cells of the snapshot (`docs/data/send-sync.json`) in table order, each row's
/// cells in [`RULE_SETS`] order, for the `types` selected (all if none).
fn send_sync_rows<'a>(spec: &Spec, cx: &Context<'a>) -> Result<Vec<Vec<&'a SendSyncCell>>, String> {
    let mut rows: Vec<Vec<&SendSyncCell>> = Vec::new();
    for (_, r) in cx.snapshot.records() {
        let RecordData::SendSync(c) = &r.data else {
            continue;
        };
        match rows.iter_mut().find(|row| row[0].type_name == c.type_name) {
            Some(row) => row.push(c),
            None => rows.push(vec![c]),
        }
    }
    let order = |c: &SendSyncCell| RULE_SETS.iter().position(|(name, ..)| *name == c.rules);
    for row in &mut rows {
        row.sort_by_key(|c| order(c));
        if row.len() != RULE_SETS.len() || row.iter().any(|c| order(c).is_none()) {
            return Err(format!("{SEND_SYNC}: `{}` lacks a rule set", row[0].type_name));
        }
    }
    let types = spec.list("types");
    rows.retain(|row| admits(&types, &row[0].type_name));
    if rows.is_empty() || types.is_some_and(|t| t.len() != rows.len()) {
        return Err(format!(
            "{SEND_SYNC} has no cells (run `cargo xtask docs`) or lacks some of the types asked for"
        ));
    }
    Ok(rows)
}

/// The matrix of types by rule sets: the traits, and `(hazard)` where one is unsound.
fn send_sync_matrix_of(rows: &[Vec<&SendSyncCell>]) -> Block {
    let mut table = Table::new(["type", "stands for"].into_iter().chain(RULE_SETS.map(|r| r.1)));
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
    let note = format!(
        "Rows of the generated table in [docs/send-sync.md]({}docs/send-sync.md), \
         whose source is the table in `src/send_sync.rs`: each build checks the cells of its \
         own rule set with static assertions, and `cargo xtask docs` builds all three.",
        cx.up()
    );
    Ok(vec![send_sync_matrix_of(&rows), Block::Text(note)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::snapshot::tests::{env, snapshot, verdict};
    use crate::render::markdown;
    use interpsafe_results::CompileCase;

    /// Renders each `> SPEC` of `script` against `snap` (on a page in `RFCs/`) and checks the
    /// lines after it (`\n` stands for a line break): each must appear in the Markdown; `^`:
    /// it starts with the rest; `!`: the rest does not appear; `=`: rendering fails with an
    /// error that contains the rest.
    fn check(snap: &Snapshot, script: &str) {
        let cx = Context { snapshot: snap, root: Path::new("/nonexistent"), page: "RFCs/x.md" };
        let mut out = Err(String::new());
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(spec) = line.strip_prefix('>') {
                out = Spec::parse(spec).and_then(|s| render(&s, &cx)).map(|b| markdown(&b));
                continue;
            }
            let (mode, want) = line.split_at(if "^!=".contains(&line[..1]) { 1 } else { 0 });
            let want = want.replace("\\n", "\n");
            let ok = match (mode, &out) {
                ("=", Err(e)) => e.contains(&want),
                ("^", Ok(md)) => md.starts_with(&want),
                ("!", Ok(md)) => !md.contains(&want),
                ("", Ok(md)) => md.contains(&want),
                _ => false,
            };
            assert!(ok, "`{line}` fails on:\n{out:?}");
        }
    }

    #[test]
    fn specs_parse_and_refuse_unknown_arguments() {
        let s = Spec::parse("bench operations=bind,clone_drop strategies=unchecked").unwrap();
        assert_eq!(
            (s.kind.as_str(), s.list("operations").unwrap()),
            ("bench", vec!["bind".into(), "clone_drop".into()])
        );
        check(
            &Snapshot::default(),
            "> \n =no table kind\n > bench operations\n =`operations` is not key=value
             > bench a=1 a=2\n =`a` is given twice\n > frobs\n =unknown table kind `frobs` (known: hazards,
             > hazards strategy=tagged\n =`hazards` tables take no argument `strategy` (they take: strategies, builds, cases)
             > bench metric=joules\n =metric `joules` is neither\n > bench interpreters=x\n =`x` is not a number
             > targets cases=H1\n =no argument `cases`",
        );
    }

    #[test]
    fn an_empty_snapshot_is_not_measured_never_invented() {
        for kind in
            ["hazards", "hazard-matrix", "bench", "scaling", "handle-size", "targets", "guarantees"]
        {
            check(
                &Snapshot::default(),
                &format!("> {kind}\n ^Not measured: the snapshot in `docs/data/` has no\n !|"),
            );
        }
    }

    #[test]
    fn cases_select_their_forms_and_figures_are_rounded_by_size() {
        let l = Some(vec!["H2".to_string(), "H1.kept".to_string()]);
        let cases = [
            ("H2", true),
            ("H2.unattached", true),
            ("H1.kept", true),
            ("H1", false),
            ("H12", false),
        ];
        for (id, selected) in cases {
            assert_eq!(case_selected(&l, id), selected, "{id}");
        }
        assert!(case_selected(&None, "H12"));
        let figures = [
            (0.2345, "0.23"),
            (12.345, "12.3"),
            (123.45, "123"),
            (999.0, "999"),
            (1000.0, "1,000"),
        ];
        for (v, shown) in figures.into_iter().chain([(1001305.4, "1,001,305")]) {
            assert_eq!(figure(v), shown);
        }
    }

    #[test]
    fn labels_say_what_was_seen() {
        // observed => declared => label
        let cases = "e:bind: belongs to => e:bind: x => error at `bind`
            e:load into brand: the handle belongs to interpreter 1, which has ended => e:x => error at `load into brand` (owner ended)
            u:crash: killed by SIGABRT; stderr: free(): invalid pointer => u:x => **undetected**: crash, error on stderr
            u:accepted: bound; wrong-interpreter: a probe ran [x; sys.gettotalrefcount() rose by 1] => u:x => **undetected**: ran in the wrong interpreter, references leaked
            u:accepted: bound => u:x => **undetected**: accepted
            u:whatever => u:x => **undetected**: see the JSON
            n:deferred: queued => n:x => n/a (deferred)
            n:attached to the owner interpreter 1 => n:owner: attached => n/a (owner)
            n:no slug here => n:nor here => n/a
            c:compile-fail/tests/ui/a_b.rs => c:x => compile error ([`a_b`](../compile-fail/tests/ui/a_b.rs))
            n:serialised: none lost => u:x => n/a (serialised) **≠ declared**";
        for case in cases.lines() {
            let [observed, declared, want] = case.trim().split(" => ").collect::<Vec<_>>()[..]
            else {
                panic!("{case}")
            };
            assert_eq!(label(&verdict(observed), &verdict(declared), "../"), want);
        }
    }

    #[test]
    fn hazard_cells_agree_or_say_where_each_verdict_was_seen() {
        let snap = snapshot(&[
            (
                "docs/data/hazards-3.13.json",
                "interp-tests hazards",
                "3.13|hz|H2|unchecked|own-gil|u:crash: x|u:d
                 3.13|hz|H2|unchecked|shared-gil|u:wrong-interpreter: x|u:d
                 3.13|hz|H2|tagged|own-gil|n:deferred: x|n:deferred: d
                 3.13|hz|H2|tagged|shared-gil|n:deferred: x|n:deferred: d
                 3.13|hz|H1|tagged|own-gil|e:bind: x|e:bind: d
                 3.13|hz|H3|tagged|own-gil|e:bind: x|e:bind: d
                 3.13|hz|H3|tagged|shared-gil|n:deferred: x|u:d",
            ),
            (
                "docs/data/hazards-3.13t.json",
                "interp-tests hazards",
                "3.13t|hz|H2|unchecked|own-gil|u:wrong-interpreter: x|u:d
                 3.13t|hz|H2|tagged|own-gil|n:deferred: x|n:deferred: d
                 3.13-asan|hz|H3|tagged|own-gil|e:bind: x|e:bind: d",
            ),
        ]);
        check(
            &snap,
            r"> hazards strategies=unchecked,tagged
             ^| case | `unchecked` | `tagged` |\n|---|---|---|\n
             | `H1` | not measured | error at `bind` |\n
             | `H2` | **undetected**: crash on `3.13` (own-gil); ran in the wrong interpreter on `3.13` (shared-gil), `3.13t` | n/a (deferred) |\n
             | `H3` | not measured | error at `bind` on `3.13` (own-gil), `3.13-asan`; n/a (deferred) **≠ declared** on `3.13` (shared-gil) |\n
             Source: `docs/data/hazards-3.13.json`, `docs/data/hazards-3.13t.json` (written by `interp-tests hazards`).
             Builds: `3.13`: CPython 3.13.15, GIL; `3.13t`: CPython 3.13.15, free-threaded; `3.13-asan`: CPython 3.13.15, GIL, AddressSanitizer build.
             PyO3 0.28.3. Machine: linux x86_64, 2 logical CPUs (Test CPU), 1 thread(s) per core.
             ](../docs/hazards.md)
             > hazards cases=H1 builds=3.13t
             ^Not measured: the snapshot in `docs/data/` has no hazard verdicts for this selection.
             > hazards cases=H2.kept,H1
             ^| case | `tagged` |\n|---|---|\n| `H1` | error at `bind` |\n\n
             > hazard-matrix builds=3.13,3.13t
             ^#### `3.13`: CPython 3.13.15, GIL\n\n| case | setting | `unchecked` | `tagged` |\n|---|---|---|---|\n| `H1` | own-gil | not measured | error at `bind` |\n
             | `H2` | shared-gil | **undetected**: ran in the wrong interpreter | n/a (deferred) |\n
             | `H3` | shared-gil | not measured | n/a (deferred) **≠ declared** |\n
             #### `3.13t`: CPython 3.13.15, free-threaded\n\n| case | setting | `unchecked` | `tagged` |
             Builds: `3.13t`: CPython 3.13.15, free-threaded. PyO3
             !asan",
        );
    }

    #[test]
    fn guarantees_hold_only_where_no_declared_verdict_is_undetected() {
        let snap = snapshot(&[(
            "hazards-3.13.json",
            "interp-tests hazards",
            "3.13|hz|H1|tagged|own-gil|e:bind: x|e:bind: x|safe
             3.13|hz|H13.once|tagged|own-gil|n:a|n:a|safe
             3.13|hz|H15|tagged|own-gil|e:bind: y|e:bind: y|raw
             3.13|hz|H1|scoped|own-gil|e:bind: x|e:bind: x|safe
             3.13|hz|H15|scoped|own-gil|u:z|u:z|raw
             3.13|hz|H16|branded|own-gil|c:ui/a.rs|c:ui/a.rs|raw
             3.13|hz|H2|scoped|own-gil|u:z|u:z",
        )]);
        // Records without a threat (older snapshots) are left out.
        check(
            &snap,
            r"> guarantees
             ^| a caller can | cases | `tagged` | `scoped` | `branded` |\n|---|---|---|---|---|\n
             | safe | `H1` `H13.once` | **holds** (1 refused, 1 cannot arise) | **holds** (1 refused) | not run |\n
             | raw | `H15` `H16` | **holds** (1 refused) | not guaranteed: `H15` | **holds** (1 do not compile) |\n
             (case × setting × build, on `3.13`)
             !H2",
        );
    }

    #[test]
    fn bench_tables_show_ratios_spreads_provenance_and_gaps() {
        let snap = snapshot(&[(
            "docs/data/bench.json",
            "cargo xtask bench --quick",
            "3.13|ns|bind|unchecked|1|0.25
             3.13|ns|bind|tagged|1|5.0|4.5|5.5
             3.13|ns|bind|unchecked|2|0.5
             3.13|ns|reference|PyThreadState_GetUnchecked|1|3.0
             3.13|ns|send|tagged|1|1234567.0
             3.13|sc|interpreters|tagged|2|1.7",
        )]);
        check(
            &snap,
            r"> bench operations=bind,send strategies=unchecked,tagged,branded
             ^**Quick run**
             | build | interpreters | operation | `unchecked` | `tagged` | `branded` |
             | `3.13` | 1 | `bind` | 0.25 | 5.00 [4.50–5.50] (×20.00) | not measured |
             | `3.13` | 1 | `send` | not measured | 1,234,567 | not measured |
             | `3.13` | 2 | `bind` | 0.50 | not measured | not measured |
             (×r): the ratio to `unchecked` on the same row. [a–b]: criterion's 95% confidence interval.
             written by `cargo xtask bench --quick`: **a quick run
             !PyThreadState_GetUnchecked
             > bench interpreters=2
             | `3.13` | 2 | `bind` | 0.50 |
             ![a–b]
             > bench operations=reference baseline=none
             | build | interpreters | operation | `PyThreadState_GetUnchecked` |
             | `3.13` | 1 | `reference` | 3.00 |
             !(×
             > bench metric=instructions
             ^Not measured: the snapshot in `docs/data/` has no instruction counts",
        );
    }

    #[test]
    fn scaling_handle_size_and_target_tables_render_when_present() {
        let snap = snapshot(&[
            (
                "docs/data/bench.json",
                "cargo xtask bench",
                "3.13t|sc|threads/independent|tagged|1|1.0
                 3.13t|sc|threads/independent|tagged|2|1.7
                 3.13|ns|bind|unchecked|1|0.25
                 3.13|ns|bind|tagged|1|0.5
                 3.13|ns|bind|unchecked|2|0.25
                 3.13|ns|bind|tagged|2|9.0
                 3.13|ns|reference|PyThreadState_GetUnchecked|2|3.0
                 3.13t|ns|bind|unchecked|1|0.25
                 3.13t|ns|bind|tagged|1|1.0",
            ),
            (
                "docs/data/bench.json",
                "cargo xtask bench",
                "3.13|size|tagged|interpsafe::strategy::tagged::TaggedHandle|16|16
                 3.13t|size|tagged|interpsafe::strategy::tagged::TaggedHandle|16|24",
            ),
        ]);
        check(
            &snap,
            r"> scaling
             | build | scenario | strategy | 1 thread(s) | 2 thread(s) |
             | `3.13t` | `threads/independent` | `tagged` | ×1.00 | ×1.70 |
             Source: `docs/data/bench.json` (written by `cargo xtask bench`).
             !Quick run
             > handle-size
             | strategy | handle type | `3.13` | `3.13t` |\n|---|---|---|---|\n| `tagged` | `TaggedHandle` | 16 B (16 B as `Option`) | 16 B (24 B as `Option`) |\n
             > bench strategies=tagged builds=3.13t
             | `3.13t` | 1 | `bind` | 1.00 |
             !×1.70
             > targets strategies=tagged builds=3.13
             | target | build | measured | verdict |
             | tagged bind, one interpreter: at most +0.5 ns over unchecked | `3.13` | +0.25 ns (0.50 vs 0.25) | met |
             allowance 3.50 ns | **missed** |
             !`3.13t`
             > targets strategies=branded
             ^Not measured",
        );
    }

    #[test]
    fn send_sync_tables_come_from_the_cells_of_all_three_rule_sets() {
        let cell = |rules: &str, sync: bool, hazard: bool| {
            let case = CompileCase { path: "ui/a.rs".into(), must_compile: false };
            let (type_name, stands_for, note) = ("A<'s>".into(), "a | thing".into(), "why".into());
            let cell = SendSyncCell {
                type_name,
                stands_for,
                rules: rules.into(),
                send: true,
                sync,
                hazard,
                cases: vec![case],
                note,
            };
            ResultRecord { environment: env("3.13"), data: RecordData::SendSync(cell) }
        };
        // Out of column order on purpose: the columns follow the rule sets, not the file.
        let cells = vec![
            cell("own-gil", true, true),
            cell("gil", false, false),
            cell("free-threaded", true, false),
        ];
        let source = |cells: &[ResultRecord]| super::super::snapshot::Source {
            file: "docs/data/send-sync.json".into(),
            result: interpsafe_results::ResultFile::new("cargo xtask docs", cells.to_vec()),
        };
        check(
            &Snapshot { sources: vec![source(&cells)] },
            r"> send-sync
             | `A<'s>` | a \| thing | Send, !Sync | Send + Sync | Send + Sync (hazard) |\n
             | `A<'s>` | gil | yes | no | static assertion; compile-fail: [`ui/a.rs`](../compile-fail/tests/ui/a.rs) | why |\n| `A<'s>` | free-threaded |
             | `A<'s>` | own-gil | yes | yes | static assertion; compile-fail: [`ui/a.rs`](../compile-fail/tests/ui/a.rs) | **hazard**: why |\n
             > send-sync-matrix types=A<'s>
             ](../docs/send-sync.md)
             !enforced by
             > send-sync-matrix types=B
             =lacks some of the types",
        );
        check(
            &Snapshot { sources: vec![source(&cells[..2])] },
            "> send-sync\n =`A<'s>` lacks a rule set",
        );
    }
}
