//! The evaluation tables of the docs and RFCs, rendered from the snapshot (`docs/data/*.json`)
//! and nothing else. The kinds (`KINDS`), their arguments and what every table says about itself
//! (its provenance, "not measured") are described in `docs/generated-tables.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::path::Path;

use interpsafe_results::{
    build_rank, hazard_number, strategy_rank, ExtCell, ExtOutcome, HazardVerdict, InterpreterBuild,
    Interval, Machine, RecordData, ResultRecord, SendSyncCell, Verdict, VerdictKind, BASELINE,
    REFERENCE,
};

use super::snapshot::{is_quick, Snapshot};
use crate::render::{Block, Table};
use crate::send_sync::{RULE_SETS, SEND_SYNC};
use crate::targets::{figure, Figure, Figures, Key, Metric, PeerFigures};

/// A table request: its kind and `key=value` arguments, as written in the start marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The table kind (`hazards`, `bench`, ...).
    pub kind: String,
    /// The arguments.
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
        let items = self.args.get(key)?.split(',').map(str::trim).filter(|s| !s.is_empty());
        Some(items.map(String::from).collect())
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
const KINDS: [(&str, &[&str], Kind); 12] = [
    ("hazards", &["cases"], hazards),
    ("hazard-matrix", &["cases"], hazard_matrix),
    ("bench", &["operations", "interpreters", "metric", "baseline"], bench),
    ("scaling", &["operations"], scaling),
    ("handle-size", &[], handle_size),
    ("targets", &[], targets),
    ("send-sync", &["types"], send_sync),
    ("send-sync-matrix", &["types"], send_sync_matrix),
    ("guarantees", &[], guarantees),
    ("seeded-holes", &[], seeded_holes),
    ("ext-cells", &["variants", "kinds"], ext_cells),
    ("peers", &["operations", "modes"], peers),
];

/// Renders the table `spec` asks for. Arguments the kind does not take are refused, so that a
/// typo cannot silently widen a table.
pub fn render(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let Some((kind, allowed, f)) = KINDS.iter().find(|k| k.0 == spec.kind) else {
        let known: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
        return Err(format!("unknown table kind `{}` (known: {})", spec.kind, known.join(", ")));
    };
    let common: &[&str] = match *kind {
        k if k.starts_with("send-sync") => &[],
        // Its rows are module variants (peers among them), not strategies.
        "ext-cells" => &["builds"],
        _ => &["strategies", "builds"],
    };
    let takes = || common.iter().chain(allowed.iter());
    if let Some(k) = spec.args.keys().find(|k| !takes().any(|a| a == k)) {
        let takes = join(takes(), ", ");
        return Err(format!("`{kind}` tables take no argument `{k}` (they take: {takes})"));
    }
    f(spec, cx)
}

// ---------------------------------------------------------------------------------------------
// Shared pieces: selection, ordering, provenance, formats.

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

/// The snapshot's records of the builds the spec admits, each with what `pick` takes of it.
fn picked<'a, T>(
    spec: &Spec,
    cx: &Context<'a>,
    pick: impl Fn(&'a RecordData) -> Option<T>,
) -> Vec<(&'a ResultRecord, T)> {
    let builds = spec.list("builds");
    let admitted = cx.snapshot.records().map(|(_, r)| r);
    let admitted = admitted.filter(|r| admits(&builds, &r.environment.interpreter.name));
    admitted.filter_map(|r| Some((r, pick(&r.data)?))).collect()
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

/// The distinct strategies of `present`, in the toolkit's order.
fn ranked<'a>(present: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut all = distinct(present.into_iter().map(String::from));
    all.sort_by_key(|s| strategy_rank(s));
    all
}

/// The strategy columns: the `strategies` argument if given, else those of `present`.
fn columns<'a>(spec: &Spec, present: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    spec.list("strategies").unwrap_or_else(|| ranked(present))
}

/// Text in code format.
fn code(text: impl Display) -> String {
    format!("`{text}`")
}

/// The items joined by `sep`.
fn join(items: impl IntoIterator<Item = impl Display>, sep: &str) -> String {
    items.into_iter().map(|i| i.to_string()).collect::<Vec<_>>().join(sep)
}

/// A header row: `fixed` headings, then `more`.
fn head(fixed: &[&str], more: impl IntoIterator<Item = String>) -> Table {
    Table::new(fixed.iter().map(|h| h.to_string()).chain(more))
}

/// A type name without its module paths: `a::b::Py<c::PyAny>` is `Py<PyAny>`.
fn without_paths(type_name: &str) -> String {
    let segments =
        type_name.split_inclusive(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'));
    segments.map(|s| s.rsplit("::").next().unwrap_or(s)).collect()
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
    let model = m.cpu_model.as_ref().map_or(String::new(), |c| format!(" ({c})"));
    let per_core =
        m.threads_per_core.map_or(String::new(), |t| format!(", {t} thread(s) per core"));
    format!("{} {}, {} logical CPUs{model}{per_core}", m.os, m.arch, m.cpus)
}

/// The provenance paragraph of a table generated from `used`: the snapshot files by producer,
/// the builds, PyO3 versions and machines, each in order of first appearance (builds sorted).
fn provenance<'a>(cx: &Context<'a>, used: impl IntoIterator<Item = &'a ResultRecord>) -> Block {
    let used: Vec<&ResultRecord> = used.into_iter().collect();
    let file = |r: &&ResultRecord| {
        let s = cx.snapshot.source_of(r);
        (s.result.producer.as_str(), s.file.as_str())
    };
    let sources = distinct(used.iter().map(file));
    let files = distinct(sources.iter().map(|s| s.0)).into_iter().map(|producer| {
        let list = join(sources.iter().filter(|s| s.0 == producer).map(|s| code(s.1)), ", ");
        let quick = match is_quick(producer) {
            true => ": **a quick run, smoke numbers to develop with, not to cite**",
            false => "",
        };
        format!("{list} (written by `{producer}`{quick})")
    });
    let builds = join(builds_of(used.iter().copied()).into_iter().map(describe_build), "; ");
    let pyo3 = join(distinct(used.iter().map(|r| r.environment.pyo3_version.as_str())), ", ");
    let machines = distinct(used.iter().map(|r| &r.environment.machine));
    let (files, machines) =
        (join(files, "; "), join(machines.into_iter().map(describe_machine), "; "));
    Block::Text(format!("Source: {files}. Builds: {builds}. PyO3 {pyo3}. Machine: {machines}."))
}

/// The line printed instead of a table that has no figures at all.
fn not_measured(what: &str, how: &str) -> Result<Vec<Block>, String> {
    Ok(vec![Block::Text(format!(
        "Not measured: the snapshot in `docs/data/` has no {what}. Produce them with `{how}`, then \
         copy them in with `cargo xtask docs --refresh`."
    ))])
}

/// A table's blocks: `quick` if any of `used` comes from a quick run, the table, its note and
/// its provenance.
fn blocks<'a>(
    cx: &Context<'a>,
    used: Vec<&'a ResultRecord>,
    quick: Option<&str>,
    table: Table,
    note: String,
) -> Result<Vec<Block>, String> {
    let quick =
        quick.filter(|_| used.iter().any(|r| is_quick(&cx.snapshot.source_of(r).result.producer)));
    let quick = quick.map(|q| Block::Text(q.to_string()));
    let rest = [Block::Table(table), Block::Text(note), provenance(cx, used)];
    Ok(quick.into_iter().chain(rest).collect())
}

/// A figure with its spread where recorded: `5.00 [4.50–5.50]`.
fn with_spread(value: f64, spread: Option<Interval>) -> String {
    let range = |i: Interval| format!(" [{}–{}]", figure(i.low), figure(i.high));
    figure(value) + &spread.map_or(String::new(), range)
}

// ---------------------------------------------------------------------------------------------
// Hazard verdicts.

/// One hazard verdict as the tables use it, with its setting (`-`: none).
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
    const WORDS: &str = "asan:ASan report,crash:crash,stderr:error on stderr,hang:hang,\
        panic:panic,wrong-interpreter:ran in the wrong interpreter,wrong-object:wrong object,\
        wrong-result:wrong result,lost-updates:lost updates,use-failed:use failed,\
        refcount:refcount,pool:decref pool out of balance,leak:leak";
    let slugs: Vec<&str> = how.split("; ").filter_map(slug).collect();
    let words = WORDS.split(',').filter_map(|w| w.split_once(':'));
    let mut words: Vec<&str> = words.filter(|(k, _)| slugs.contains(k)).map(|w| w.1).collect();
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
            let declared =
                slug(expected.text()).filter(|_| expected.kind() == VerdictKind::NotApplicable);
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
    if groups.len() < 2 {
        return groups.first().map_or("not measured".to_string(), |l| l.to_string());
    }
    let all_undetected = groups.iter().all(|l| l.starts_with(UNDETECTED));
    let builds = builds_of(items.iter().map(|i| i.r));
    let parts = groups.iter().map(|&l| {
        let places = builds.iter().filter_map(|&b| {
            let on_b: Vec<_> = items.iter().zip(&labels).filter(|(i, _)| i.build() == b).collect();
            let here: Vec<&str> = on_b.iter().filter(|x| x.1 == l).map(|x| x.0.setting).collect();
            match here.len() {
                0 => None,
                n if n == on_b.len() => Some(code(&b.name)),
                _ => Some(format!("`{}` ({})", b.name, here.join(", "))),
            }
        });
        let l = if all_undetected { &l[UNDETECTED.len()..] } else { l };
        format!("{l} on {}", join(places, ", "))
    });
    let prefix = if all_undetected { UNDETECTED } else { "" };
    format!("{prefix}{}", join(parts, "; "))
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

/// The rows of a hazard table over `items`: per case (and per setting if `per_setting`), one
/// cell per strategy.
fn hazard_rows(
    items: &[Instance<'_>],
    strategies: &[String],
    per_setting: bool,
    up: &str,
) -> Table {
    let fixed: &[&str] = if per_setting { &["case", "setting"] } else { &["case"] };
    let mut table = head(fixed, strategies.iter().map(code));
    for case in case_order(items) {
        let of_case: Vec<&Instance<'_>> = items.iter().filter(|i| i.h.hazard == case).collect();
        let settings = match per_setting {
            true => distinct(of_case.iter().map(|i| Some(i.setting))),
            false => vec![None],
        };
        for setting in settings {
            let cell = |s: &String| {
                let here = |i: &&&Instance<'_>| {
                    i.h.strategy == *s && setting.is_none_or(|x| x == i.setting)
                };
                summarise(&of_case.iter().filter(here).copied().collect::<Vec<_>>(), up)
            };
            let lead = [code(case)].into_iter().chain(setting.map(str::to_string));
            table.push(lead.chain(strategies.iter().map(cell)));
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
    blocks(cx, items.iter().map(|i| i.r).collect(), None, table, hazard_legend(&cx.up(), false))
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
    out.push(Block::Text(hazard_legend(&cx.up(), true)));
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
    let mut table = head(&["a caller can", "cases"], strategies.iter().map(code));
    for threat in distinct(items.iter().map(|i| i.h.threat.as_deref())) {
        let of_threat: Vec<Instance<'_>> =
            items.iter().filter(|i| i.h.threat.as_deref() == threat).copied().collect();
        let cases = join(case_order(&of_threat).into_iter().map(code), " ");
        let cell = |s: &String| {
            let mine: Vec<&Verdict> =
                of_threat.iter().filter(|i| i.h.strategy == *s).map(|i| &i.h.expected).collect();
            let open = of_threat
                .iter()
                .filter(|i| i.h.strategy == *s && i.h.expected.kind() == VerdictKind::Undetected);
            let mut open: Vec<&str> = open.map(|i| i.h.hazard.as_str()).collect();
            open.sort_by_key(|c| (hazard_number(c), c.to_string()));
            open.dedup();
            let how = [
                (VerdictKind::RuntimeError, "refused"),
                (VerdictKind::CompileError, "do not compile"),
                (VerdictKind::NotApplicable, "cannot arise"),
            ];
            let how = how.map(|(k, w)| (mine.iter().filter(|v| v.kind() == k).count(), w));
            let how = how.iter().filter(|h| h.0 > 0).map(|(n, w)| format!("{n} {w}"));
            match (mine.is_empty(), open.is_empty()) {
                (true, _) => "not run".to_string(),
                (false, true) => format!("**holds** ({})", join(how, ", ")),
                (false, false) => format!("not guaranteed: {}", join(open.iter().map(code), " ")),
            }
        };
        let lead = [threat.unwrap_or_default().to_string(), cases];
        table.push(lead.into_iter().chain(strategies.iter().map(cell)));
    }
    let names = join(builds_of(items.iter().map(|i| i.r)).iter().map(|b| code(&b.name)), ", ");
    let note = format!(
        "Each cell counts the declared verdicts of the row's cells (case × setting × build, on \
         {names}); the hazard suite ran every one and failed on any difference. \"not \
         guaranteed\" names the cases the strategy declares undetected."
    );
    blocks(cx, items.iter().map(|i| i.r).collect(), None, table, note)
}

// ---------------------------------------------------------------------------------------------
// Bench figures.

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
    let mut table = head(&["build", "interpreters", "operation"], columns.iter().map(code));
    for b in builds_of(used.iter().copied()) {
        let counts: BTreeSet<u32> =
            figs.iter().filter(|(k, _)| k.1 == b.name).map(|(k, _)| k.2).collect();
        for (n, op) in counts.iter().flat_map(|n| ops.iter().map(move |op| (*n, op))) {
            let get = |s: &str| figures.figure(metric, &b.name, n, op, s);
            let base = get(baseline).map(|f| f.value).filter(|v| *v > 0.0 && baseline != "none");
            let cell = |s: &String| match (get(s), base.filter(|_| s != baseline)) {
                (None, _) => "not measured".to_string(),
                (Some(f), None) => with_spread(f.value, f.spread),
                (Some(f), Some(base)) => {
                    format!("{} (×{:.2})", with_spread(f.value, f.spread), f.value / base)
                }
            };
            let lead = [code(&b.name), n.to_string(), code(op)];
            table.push(lead.into_iter().chain(columns.iter().map(cell)));
        }
    }
    let ratio = match baseline {
        "none" => String::new(),
        _ => format!(" (×r): the ratio to `{baseline}` on the same row."),
    };
    let spread = figs.iter().any(|(_, f)| f.spread.is_some());
    let spread = if spread { " [a–b]: criterion's 95% confidence interval." } else { "" };
    let note = format!(
        "Cells: {unit}.{ratio}{spread} interpreters: 1 = only the main interpreter has ever entered toolkit \
         code (the tagged strategy's fast path is on); 2 = an own-GIL subinterpreter is alive as \
         well (the fast path is off); the operation runs in main either way. not measured: the \
         snapshot has no such figure."
    );
    let quick = "**Quick run**: these figures come from `cargo xtask bench --quick` (short \
                 warm-up and measurement). They show the shape of the costs and are not figures \
                 to cite.";
    blocks(cx, used, Some(quick), table, note)
}

/// `scaling`: throughput with N threads (or interpreters) over throughput with one, with the
/// wall clock per operation and its min–max over the repeated runs where recorded.
fn scaling(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let operations = spec.list("operations");
    let figures = Figures::new(selected(spec, cx));
    let figs =
        figures.0.iter().filter(|(k, _)| k.0 == Metric::Scaling && admits(&operations, &k.3));
    let mut figs: Vec<(&Key, &Figure)> = figs.collect();
    if figs.is_empty() {
        return not_measured("thread-scaling figures", "cargo xtask bench");
    }
    let build = |f: &Figure| build_rank(&f.record.environment.interpreter);
    figs.sort_by_key(|(k, f)| (build(f), k.3.clone(), strategy_rank(&k.4), k.2));
    let threads: BTreeSet<u32> = figs.iter().map(|(k, _)| k.2).collect();
    let headings = threads.iter().map(|t| format!("{t} thread(s)"));
    let mut table = head(&["build", "scenario", "strategy"], headings);
    // The wall clock per operation and thread, where the scaling bench recorded its spread.
    let ns = |f: &Figure| match (&f.record.data, f.spread) {
        (RecordData::Bench(b), Some(i)) => b.ns_per_op.map(|ns| with_spread(ns, Some(i))),
        _ => None,
    };
    for (b, op, s) in distinct(figs.iter().map(|(k, _)| (&k.1, &k.3, &k.4))) {
        let cell = |t: &u32| match figures.figure(Metric::Scaling, b, *t, op, s) {
            None => "not measured".to_string(),
            Some(f) => {
                format!("×{:.2}", f.value) + &ns(f).map_or(String::new(), |n| format!(" ({n} ns)"))
            }
        };
        table.push([code(b), code(op), code(s)].into_iter().chain(threads.iter().map(cell)));
    }
    let spread = match figs.iter().any(|(_, f)| ns(f).is_some()) {
        true => {
            " (t [a–b] ns): the wall clock per operation on each thread (the median of the \
                 repeated runs) and its min–max over them."
        }
        false => "",
    };
    let note = format!(
        "Cells: throughput with that many threads (each attached to the main interpreter, or \
         each to its own own-GIL interpreter, as the scenario says) over the throughput with \
         one.{spread} The `control` scenario is a pure-Rust loop measured in the same run: the \
         machine's own ceiling."
    );
    let quick =
        "**Quick run**: scaling measured by `cargo xtask bench --quick`; not figures to cite.";
    blocks(cx, figs.iter().map(|(_, f)| f.record).collect(), Some(quick), table, note)
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
    let mut table = head(&["strategy", "handle type"], builds.iter().map(|b| code(&b.name)));
    for s in ranked(sizes.iter().map(|x| x.1.strategy.as_str())) {
        let rank = |r: &ResultRecord| build_rank(&r.environment.interpreter);
        let of = |b: &&InterpreterBuild| {
            sizes.iter().find(|(r, h)| h.strategy == s && rank(r) == build_rank(b)).map(|x| x.1)
        };
        let first = builds.iter().find_map(of).map_or("", |h| h.type_name.as_str());
        let short = code(without_paths(first));
        let cells = builds.iter().map(|b| {
            of(b).map_or("not measured".into(), |h| {
                format!("{} B ({} B as `Option`)", h.size, h.option_size)
            })
        });
        table.push([code(&s), short].into_iter().chain(cells));
    }
    let note =
        "Cells: `size_of` the strategy's handle type, and of `Option` of it (equal when the \
                handle keeps the pointer's niche).";
    blocks(cx, sizes.iter().map(|x| x.0).collect(), None, table, note.into())
}

/// `seeded-holes`: each hole a `--cfg interpsafe_seeds` build reopened, and how many sequences
/// the bounded adversarial search ran before it failed on it (`strategies` is not taken: a search
/// mixes them all).
fn seeded_holes(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let runs = picked(spec, cx, |d| match d {
        RecordData::FuzzSummary(f) => Some((f, f.hole.as_deref()?)),
        _ => None,
    });
    if runs.is_empty() {
        return not_measured("seeded-hole searches", "cargo xtask test");
    }
    let head_row = ["seeded hole", "build", "first failing sequence", "sequences finished", "time"];
    let mut table = head(&head_row, []);
    for (r, (f, hole)) in &runs {
        let found = f.first_failure_at.map_or("**not found**".into(), |n| format!("#{n}"));
        let time = format!("{:.1} s", f.seconds);
        let row = [code(hole), code(&r.environment.interpreter.name), found];
        table.push(row.into_iter().chain([f.cases.to_string(), time]));
    }
    let note = "Each row: one bounded search with that hole reopened, its sequences mixing every \
                checked strategy. First failing sequence: its position in seed order, so the \
                sequences a search needed (a failure is a crash, a sanitizer report, or a \
                divergence from the model's prediction). Children on two workers run the \
                sequences in batches and the search stops at its first failure, so fewer may \
                have finished.";
    blocks(cx, runs.iter().map(|x| x.0).collect(), None, table, note.into())
}

/// One extension-module cell as the `ext-cells` table shows it: the outcome, then what an
/// imported cell got wrong.
fn ext_cell_text(c: &ExtCell) -> String {
    let outcome = match &c.outcome {
        ExtOutcome::Imported => "ok".to_string(),
        ExtOutcome::Refused { .. } => "refused".to_string(),
        ExtOutcome::Crashed { signal } => format!("**crash** ({signal})"),
        ExtOutcome::Hung => "**hang**".to_string(),
        ExtOutcome::Failed { .. } => "**failed**".to_string(),
    };
    let shared = |flag: Option<bool>, what: &str| (flag == Some(false)).then(|| what.to_string());
    let drift: i64 = c.refcount_drift.iter().map(|d| d.abs()).sum();
    let problems: Vec<String> = [
        shared(c.modules_per_interpreter, "one module"),
        shared(c.types_per_interpreter, "one type"),
        shared(c.exceptions_per_interpreter, "one exception class"),
        shared(c.caches_per_interpreter, "one cache"),
        (c.foreign_instance_isinstance == Some(true)).then(|| "foreign isinstance".to_string()),
        (c.counts_exact == Some(false)).then(|| "lost counts".to_string()),
        (drift != 0).then(|| format!("refcount drift {}", join(&c.refcount_drift, " "))),
    ]
    .into_iter()
    .flatten()
    .collect();
    match (problems.is_empty(), c.failures.is_empty()) {
        (true, true) => outcome,
        (_, true) => format!("{outcome}: {}", join(problems, ", ")),
        (_, false) => format!("{outcome} **≠ asserted**: {}", join(problems, ", ")),
    }
}

/// `ext-cells`: the extension-module driver's cells, one row per variant and build, one column
/// per interpreter kind (`variants` and `kinds` select them).
fn ext_cells(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let (variants, kinds) = (spec.list("variants"), spec.list("kinds"));
    let cells: Vec<(&ResultRecord, &ExtCell)> = picked(spec, cx, |d| match d {
        RecordData::ExtCell(c)
            if admits(&variants, &c.variant) && admits(&kinds, &c.interpreter_kind) =>
        {
            Some(c)
        }
        _ => None,
    });
    if cells.is_empty() {
        return not_measured("extension-module cells", "cargo xtask test");
    }
    let columns =
        kinds.unwrap_or_else(|| distinct(cells.iter().map(|(_, c)| c.interpreter_kind.clone())));
    let mut rows =
        distinct(cells.iter().map(|(r, c)| (c.variant.as_str(), &r.environment.interpreter)));
    rows.sort_by_key(|(_, b)| build_rank(b));
    let mut table = head(&["variant", "build"], columns.iter().map(code));
    for (variant, build) in rows {
        let cell_of = |kind: &String| {
            let found = cells.iter().find(|(r, c)| {
                c.variant == variant
                    && &r.environment.interpreter == build
                    && &c.interpreter_kind == kind
            });
            found.map_or("not measured".to_string(), |(_, c)| ext_cell_text(c))
        };
        let asserted = cells.iter().any(|(_, c)| c.variant == variant && c.asserted);
        let name = if asserted { format!("{} (asserted)", code(variant)) } else { code(variant) };
        table.push([name, code(&build.name)].into_iter().chain(columns.iter().map(cell_of)));
    }
    let refusals = distinct(cells.iter().filter_map(|(_, c)| match &c.outcome {
        ExtOutcome::Refused { message } => Some(code(message.lines().next().unwrap_or(""))),
        _ => None,
    }));
    let refused = match refusals.is_empty() {
        true => String::new(),
        false => format!(" The refusals: {}.", join(refusals, "; ")),
    };
    let note = format!(
        "Each cell: one child process running the variant in that arrangement of interpreters \
         (`ext-modules/tests/ext_driver.py`): `main` alone; `isolated`, 4 own-GIL \
         subinterpreters at once on threads; `legacy`, 2 shared-GIL ones; `isolated-first`, \
         main imports last; `cpython-interpreters`, CPython's own interpreters API as the \
         client (on 3.13 the package in its sources; on 3.14+ `concurrent.interpreters`, then an \
         `InterpreterPoolExecutor` of 2 workers running 4 tasks). ok: every interpreter imported it, got its own module, type, exception class \
         and cache, counted exactly, and (`legacy`) took no instance made in another \
         interpreter for one of its own; otherwise what differed (one type: the interpreters \
         shared it; foreign isinstance: an instance from the other interpreter passed; \
         refcount drift: `sys.gettotalrefcount()` change per round, debug builds). Only the \
         variants marked asserted fail the run; the rest are recorded.{refused}"
    );
    blocks(cx, cells.iter().map(|x| x.0).collect(), None, table, note)
}

/// `targets`: the performance targets ([`crate::targets::TARGETS`]), judged on the snapshot's
/// bench figures by the same checks `cargo xtask bench` prints, so a page never states a verdict
/// the figures do not give. `strategies` keeps the targets whose text starts with one of them.
fn targets(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    let strategies = spec.list("strategies");
    let figures = picked(spec, cx, |d| {
        matches!(d, RecordData::Bench(_) | RecordData::ExtBench(_)).then_some(())
    });
    let records: Vec<&ResultRecord> = figures.into_iter().map(|x| x.0).collect();
    let mut checks = crate::targets::judge(records.iter().copied());
    let about = |target: &str| {
        strategies.as_ref().is_none_or(|l| l.iter().any(|s| target.starts_with(&format!("{s} "))))
    };
    checks.retain(|c| about(&c[0]));
    if checks.is_empty() {
        return not_measured("performance targets", "cargo xtask bench");
    }
    let mut table = Table::new(["target", "build", "measured", "verdict"]);
    for [target, build, measured, verdict] in checks {
        let verdict = if verdict == "missed" { "**missed**".to_string() } else { verdict };
        table.push([target, code(build), measured, verdict]);
    }
    let note = "Each target is judged by the checks `cargo xtask bench` prints at the end of its \
         console output, as `xtask/src/targets.rs` words them: the per-operation targets against \
         `unchecked` in the same bench, the scaling targets against the pure-Rust control loop \
         of the same scaling run (capped at ×2.00: two threads cannot do more than twice the \
         work of one).";
    blocks(cx, records, None, table, note.into())
}

// ---------------------------------------------------------------------------------------------
// The extension-module comparison.

/// `peers`: the extension-module variants × the surface's operations, per build and mode: wall
/// clock with its spread, instructions per call, the ratio to the fastest peer that imports in
/// own-GIL interpreters; then the gaps to the fastest peer in any mode and to the C floor, the
/// state lookup (`interned` − `identity`), and 2-interpreter scaling against the control.
fn peers(spec: &Spec, cx: &Context<'_>) -> Result<Vec<Block>, String> {
    use crate::targets::{CONTROL, C_FLOOR, EXT_OPERATIONS, TOOLKIT_VARIANTS};
    let strategies = spec.list("strategies");
    // Every variant of the builds: the reference peers count even where `strategies` leaves
    // their rows out.
    let records = picked(spec, cx, |d| matches!(d, RecordData::ExtBench(_)).then_some(()));
    let records: Vec<&ResultRecord> = records.into_iter().map(|x| x.0).collect();
    if records.is_empty() {
        let how = "cargo xtask bench --only peers";
        return not_measured("extension-module comparison figures", how);
    }
    let f = PeerFigures::new(records.iter().copied());
    let ops =
        spec.list("operations").unwrap_or(EXT_OPERATIONS.iter().map(|s| s.to_string()).collect());
    let modes = ["main", "second-alive", "subinterpreter"].map(String::from).to_vec();
    let modes = spec.list("modes").unwrap_or(modes);
    let gaps = ["vs fastest peer / C (geomean)", "state lookup"].map(String::from);
    let mut table = head(&["build", "mode", "variant"], ops.iter().map(code).chain(gaps));
    let geomean = |r: &[f64]| match r.len() {
        0 => "–".to_string(),
        n => format!("×{:.2}", (r.iter().map(|x| x.ln()).sum::<f64>() / n as f64).exp()),
    };
    // Stock PyO3, the toolkit's strategies, the peers, the C floor last.
    let rank = |v: &String| {
        let ours = ["stock_pyo3"].iter().chain(TOOLKIT_VARIANTS).position(|x| x == v);
        (ours.is_none(), v == C_FLOOR, ours, v.clone())
    };
    for build in f.builds() {
        let mut variants: Vec<String> = f.variants(&build).into_iter().collect();
        variants.retain(|v| v != "python" && v != CONTROL);
        let peers: Vec<String> =
            variants.iter().filter(|v| v.starts_with("peer_") && *v != C_FLOOR).cloned().collect();
        variants.retain(|v| admits(&strategies, v));
        variants.sort_by_key(rank);
        for (mode, v) in modes.iter().flat_map(|m| variants.iter().map(move |v| (m, v))) {
            let (ns, ir) = (
                |op: &str| f.ns(&build, mode, v, op),
                |op: &str| f.instructions(&build, mode, v, op),
            );
            let (mut to_fast, mut to_c, mut told) = (Vec::new(), Vec::new(), None);
            let mut cell = |op: &String| match f.get(&build, mode, v, op) {
                // The reason once a row: the other operations say "refused".
                Some(e) if e.refused.is_some() => match told.replace(e.refused.as_deref()) {
                    Some(earlier) if earlier == e.refused.as_deref() => "refused".to_string(),
                    _ => format!(
                        "refused ({})",
                        e.refused
                            .iter()
                            .flat_map(|w| w.chars().take(80))
                            .collect::<String>()
                            .replace('|', "/")
                    ),
                },
                Some(_) if ns(op).is_some() || ir(op).is_some() => {
                    let sd = f.get(&build, mode, v, op).and_then(|e| e.ns_stdev);
                    let sd = sd.map_or(String::new(), |s| format!(" ±{}", figure(s)));
                    let ratio = ns(op).and_then(|ns| {
                        let (_, base) = f.reference_ns(&build, mode, op)?;
                        to_fast.extend(f.fastest(&build, mode, op, &peers).map(|p| ns / p.1));
                        to_c.extend(f.ns(&build, mode, C_FLOOR, op).map(|c| ns / c));
                        Some(format!("(×{:.2})", ns / base))
                    });
                    let shown = [
                        ns(op).map(|n| format!("{} ns{sd}", figure(n))),
                        ir(op).map(|i| format!("{} instr", figure(i))),
                        ratio,
                    ];
                    join(shown.into_iter().flatten(), " ")
                }
                _ => "not measured".to_string(),
            };
            let cells: Vec<String> = ops.iter().map(&mut cell).collect();
            if cells.iter().all(|c| c == "not measured") {
                continue;
            }
            let lookup = |get: &dyn Fn(&str) -> Option<f64>, unit: &str| {
                Some(format!("{:+.1} {unit}", get("interned")? - get("identity")?))
            };
            let lookup =
                join([lookup(&ns, "ns"), lookup(&ir, "instr")].into_iter().flatten(), ", ");
            let gap = format!("{} / {}", geomean(&to_fast), geomean(&to_c));
            let lead = [code(&build), mode.clone(), code(v)];
            table.push(lead.into_iter().chain(cells).chain([gap, lookup]));
        }
    }
    let mut note =
        "Cells: pyperf's mean ± stdev in main (`main`: only main alive; `second-alive`: \
         an own-GIL subinterpreter alive), or inside an own-GIL subinterpreter the mean ± stdev \
         of timed loops (`time.perf_counter_ns`, pyperf cannot spawn workers there); \
         instructions per call under callgrind, (I(2N) − I(N)) / N with `PYTHONHASHSEED=0`, \
         the loop's iteration included (the empty loop's count is given below; the stock-PyO3 \
         target subtracts it); (×r): the ratio to the fastest peer that imports in \
         own-GIL interpreters, per operation (the C floor `peer_c` not counted as a peer). \
         Geomean: over the operations, to the fastest peer in any mode and to the C floor. \
         State lookup: `interned` − `identity`, two calls that differ by the module-level \
         cache read (the strategy's once-cell, module state or `gil_safe_call_once_and_store`); \
         the lookup a method makes through its type (`PyType_GetModuleByDef`) cannot be \
         isolated: the surface has no method without state."
            .to_string();
    for build in f.builds() {
        let empty = ["main", "second-alive"].map(|m| {
            let ir = f.instructions(&build, m, "python", "empty_loop");
            ir.map(|i| format!("{} instr ({m})", figure(i)))
        });
        let empty = join(empty.into_iter().flatten(), ", ");
        if !empty.is_empty() {
            note += &format!(" Empty loop on `{build}`: {empty}.");
        }
        let refs = join(f.own_gil_peers(&build).iter().map(code), ", ");
        let refs = if refs.is_empty() { "none measured".to_string() } else { refs };
        note += &format!(" Own-GIL peers on `{build}`: {refs}.");
    }
    let mut out = blocks(cx, records.clone(), None, table, note)?;
    let mut scaling =
        Table::new(["build", "variant", "2 interpreters / 1", "ns per call (2 interpreters)"]);
    for r in &records {
        let RecordData::ExtBench(e) = &r.data else { continue };
        if e.mode != "scaling" || !(admits(&strategies, &e.variant) || e.variant == CONTROL) {
            continue;
        }
        let range = |i: Interval| format!(" [{:.2}–{:.2}]", i.low, i.high);
        let s = match (e.scaling, &e.refused) {
            (Some(s), _) => format!("×{s:.2}{}", e.scaling_interval.map_or(String::new(), range)),
            (None, Some(why)) => format!("refused ({})", why.chars().take(60).collect::<String>()),
            _ => "not measured".to_string(),
        };
        let ns = e.ns_per_op.map_or("–".to_string(), |ns| with_spread(ns, e.ns_interval));
        scaling.push([code(&r.environment.interpreter.name), code(&e.variant), s, ns]);
    }
    if !scaling.rows.is_empty() {
        out.push(Block::Table(scaling));
        out.push(Block::Text(
            "Scaling: `Counter().incr()` in 2 own-GIL subinterpreters on their own threads, \
             throughput over 1 (best of the repeats, [min–max]); `python-control` is a \
             pure-Python counter measured the same way."
                .into(),
        ));
    }
    Ok(out)
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
    let mut table = head(&["type", "stands for"], RULE_SETS.map(|r| r.1.to_string()));
    for row in rows {
        let traits = row.iter().map(|c| {
            let not = |b: bool| if b { "" } else { "!" };
            let sep = if c.send && c.sync { " + " } else { ", " };
            let hazard = if c.hazard { " (hazard)" } else { "" };
            format!("{}Send{sep}{}Sync{hazard}", not(c.send), not(c.sync))
        });
        table.push([code(&row[0].type_name), row[0].stands_for.clone()].into_iter().chain(traits));
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
        let cases = c.cases.iter().map(|case| {
            let kind = if case.must_compile { "must compile" } else { "compile-fail" };
            format!("; {kind}: [`{0}`]({up}compile-fail/tests/{0})", case.path)
        });
        let enforced = format!("static assertion{}", cases.collect::<String>());
        let note = if c.hazard { format!("**hazard**: {}", c.note) } else { c.note.clone() };
        let (send, sync) = (yes_no(c.send), yes_no(c.sync));
        details.push([code(&c.type_name), c.rules.clone(), send, sync, enforced, note]);
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
pub(crate) mod tests {
    use super::*;
    use crate::docs::snapshot::Source;
    use crate::fixtures::{records, verdict};
    use crate::render::markdown;

    /// A snapshot of (file, producer, records) sources.
    fn snapshot(files: &[(&str, &str, &str)]) -> Snapshot {
        let source = |&(file, producer, text): &(&str, &str, &str)| Source {
            file: file.into(),
            result: interpsafe_results::ResultFile::new(producer, records(text)),
        };
        Snapshot { sources: files.iter().map(source).collect() }
    }

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
    fn the_peers_table_compares_with_the_fastest_own_gil_peer() {
        let snap = Snapshot {
            sources: vec![super::super::snapshot::Source {
                file: "results.json".into(),
                result: interpsafe_results::ResultFile::new(
                    "cargo xtask bench --quick",
                    crate::fixtures::ext_records(crate::fixtures::EXT),
                ),
            }],
        };
        check(
            &snap,
            "> peers
             | `3.13` | main | `interpsafe_tagged` | not measured | not measured | 15.0 ns ±0.50 (×0.94) |
             20.0 ns ±0.50 12.0 instr (×0.80)
             | ×1.37 / ×2.50 | +5.0 ns |
             | `3.13` | subinterpreter | `peer_cython` |
             refused (ImportError: no)
             > peers operations=interned,identity modes=main strategies=interpsafe_tagged
             | `3.13` | main | `interpsafe_tagged` | 20.0 ns ±0.50 12.0 instr (×0.80) | 15.0 ns ±0.50 (×0.94) |
             Own-GIL peers on `3.13`: `peer_pybind11`.
             | `3.13` | `interpsafe_tagged` | ×1.90 |
             Source: `results.json` (written by `cargo xtask bench --quick`: **a quick run
             > peers operations=interned modes=main strategies=peer_c
             | `3.13` | main | `peer_c` | 8.00 ns ±0.50 (×0.32) |
             !interpsafe_tagged
             > peers bogus=1
             =`peers` tables take no argument `bogus`",
        );
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
        // Every kind but the Send/Sync ones, whose absent snapshot is an error (tested below).
        for (kind, ..) in KINDS.iter().filter(|k| !k.0.starts_with("send-sync")) {
            let script =
                format!("> {kind}\n ^Not measured: the snapshot in `docs/data/` has no\n !|");
            check(&Snapshot::default(), &script);
        }
    }

    #[test]
    fn ext_cells_show_outcomes_and_what_an_imported_cell_got_wrong() {
        let snap = snapshot(&[(
            "docs/data/ext-3.13-debug.json",
            "ext-modules/tests/ext_driver.py",
            "3.13-debug|ext|interpsafe_tagged|main|ok|-|-|0 0
             3.13-debug|ext|interpsafe_tagged|legacy|ok|yes|no|
             3.13-debug|ext|peer_nanobind|main|ok|-|-|1 -1
             3.13-debug|ext|peer_nanobind|isolated|refused ImportError: not in subinterpreters|-|-|
             3.13-debug|ext|peer_x|legacy|ok|no|yes|
             3.13-debug|ext|peer_y|legacy|crash SIGSEGV|-|-|",
        )]);
        check(
            &snap,
            "> ext-cells
             | variant | build | `main` | `legacy` | `isolated` |
             | `interpsafe_tagged` (asserted) | `3.13-debug` | ok | ok | not measured |
             | `peer_nanobind` | `3.13-debug` | ok: refcount drift 1 -1 | not measured | refused |
             | `peer_x` | `3.13-debug` | not measured | ok: one module, one type, foreign isinstance |
             | `peer_y` | `3.13-debug` | not measured | **crash** (SIGSEGV) |
             The refusals: `ImportError: not in subinterpreters`.
             Source: `docs/data/ext-3.13-debug.json` (written by `ext-modules/tests/ext_driver.py`)
             > ext-cells variants=peer_y kinds=legacy
             | variant | build | `legacy` |\n|---|---|---|\n| `peer_y` | `3.13-debug` | **crash** (SIGSEGV) |
             !peer_x
             > ext-cells strategies=tagged
             =`ext-cells` tables take no argument `strategies`",
        );
    }

    #[test]
    fn cases_select_their_forms_and_figures_are_rounded_by_size() {
        let l = Some(vec!["H2".to_string(), "H1.kept".to_string()]);
        let ids = "H2 H2.unattached H1.kept H1 H12".split(' ');
        assert_eq!(join(ids.filter(|id| case_selected(&l, id)), " "), "H2 H2.unattached H1.kept");
        assert!(case_selected(&None, "H12"));
        assert_eq!(without_paths("pyo3::instance::Py<pyo3::types::any::PyAny>"), "Py<PyAny>");
        assert_eq!(without_paths("a::BrandedHandle<'_>"), "BrandedHandle<'_>");
        let shown = [0.2345, 12.345, 123.45, 999.0, 1000.0, 1001305.4].map(figure);
        assert_eq!(shown, ["0.23", "12.3", "123", "999", "1,000", "1,001,305"]);
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
             ^Not measured: the snapshot in `docs/data/` has no instruction counts
             > scaling
             | `3.13` | `interpreters` | `tagged` | ×1.70 |
             !(t [a–b] ns)",
        );
    }

    #[test]
    fn scaling_handle_size_and_target_tables_render_when_present() {
        let snap = snapshot(&[
            (
                "docs/data/bench.json",
                "cargo xtask bench",
                "3.13t|sc|threads/independent|tagged|1|1.0
                 3.13t|sc|threads/independent|tagged|2|1.7|0.9|1.25
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
             | `3.13t` | `threads/independent` | `tagged` | ×1.00 | ×1.70 (1.00 [0.90–1.25] ns) |
             (t [a–b] ns): the wall clock per operation on each thread (the median of the repeated runs) and its min–max over them.
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
        // Out of column order on purpose: the columns follow the rule sets, not the file.
        let cells = "3.13|ss|A<'s>|own-gil|send sync hazard
                     3.13|ss|A<'s>|gil|send
                     3.13|ss|A<'s>|free-threaded|send sync";
        let snap = |text: &str| snapshot(&[("docs/data/send-sync.json", "cargo xtask docs", text)]);
        check(
            &snap(cells),
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
            &snap(&cells.lines().take(2).collect::<Vec<_>>().join("\n")),
            "> send-sync\n =`A<'s>` lacks a rule set",
        );
    }
}
