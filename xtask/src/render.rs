//! The one table model of xtask ([`Block`]s whose text is inline Markdown) and its back-ends:
//! [`markdown`] for the pages, [`html`] for `report.html` (Markdown rendered, figures inline) and
//! [`console`] for a terminal (Markdown stripped, columns aligned).

/// One block of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading of the given level (1 = `#`).
    Heading(usize, String),
    /// A paragraph of inline Markdown.
    Text(String),
    /// A table.
    Table(Table),
    /// An SVG figure (HTML only).
    Figure(String),
}

/// A table: a header row and rows of inline-Markdown cells, each row as long as the header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// The header cells.
    pub head: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headings.
    pub fn new<S: Into<String>>(head: impl IntoIterator<Item = S>) -> Table {
        Table { head: head.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    /// Appends a row.
    pub fn push(&mut self, cells: impl IntoIterator<Item = String>) {
        self.rows.push(cells.into_iter().collect());
    }
}

/// The blocks as Markdown, separated by blank lines (figures are left out).
pub fn markdown(blocks: &[Block]) -> String {
    let row = |cells: &[String]| {
        let escaped: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |\n", escaped.join(" | "))
    };
    let parts: Vec<String> = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Heading(level, text) => Some(format!("{} {text}\n", "#".repeat(*level))),
            Block::Text(text) => Some(format!("{text}\n")),
            Block::Table(t) => {
                let rule = format!("|{}\n", "---|".repeat(t.head.len()));
                Some(row(&t.head) + &rule + &t.rows.iter().map(|r| row(r)).collect::<String>())
            }
            Block::Figure(_) => None,
        })
        .collect();
    parts.join("\n")
}

/// The blocks as the body of an HTML page, inline Markdown rendered.
pub fn html(blocks: &[Block]) -> String {
    let row = |tag: &str, row: &[String]| {
        let cells: String =
            row.iter().map(|c| format!("<{tag}>{}</{tag}>", inline_html(c))).collect();
        format!("<tr>{cells}</tr>\n")
    };
    let block = |b: &Block| match b {
        Block::Heading(level, text) => format!("<h{level}>{}</h{level}>\n", inline_html(text)),
        Block::Text(text) => format!("<p>{}</p>\n", inline_html(text)),
        Block::Table(t) => {
            let rows: String = t.rows.iter().map(|r| row("td", r)).collect();
            format!("<table>{}{rows}</table>\n", row("th", &t.head))
        }
        Block::Figure(svg) => format!("<figure>{svg}</figure>\n"),
    };
    blocks.iter().map(block).collect()
}

/// The blocks for a terminal: Markdown markup stripped, table columns padded to one width.
pub fn console(blocks: &[Block]) -> String {
    let block = |b: &Block| match b {
        Block::Heading(_, text) | Block::Text(text) => format!("{}\n\n", plain(text)),
        Block::Table(t) => {
            let all: Vec<Vec<String>> = std::iter::once(&t.head)
                .chain(&t.rows)
                .map(|r| r.iter().map(|c| plain(c)).collect())
                .collect();
            let width =
                |i: usize| all.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max();
            let widths: Vec<usize> = (0..t.head.len()).map(|i| width(i).unwrap_or(0)).collect();
            let line = |row: &Vec<String>| {
                let cells: Vec<String> =
                    row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
                format!("  {}\n", cells.join("  ").trim_end())
            };
            all.iter().map(line).collect::<String>() + "\n"
        }
        Block::Figure(_) => String::new(),
    };
    blocks.iter().map(block).collect()
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The inline Markdown the tables use (`code`, **bold**, [links](url), `\|`) as HTML.
pub fn inline_html(text: &str) -> String {
    inline(text, &|kind, inner, url| match kind {
        Inline::Code => format!("<code>{}</code>", escape(inner)),
        Inline::Bold => format!("<strong>{}</strong>", inline_html(inner)),
        Inline::Link => format!("<a href=\"{}\">{}</a>", escape(url), inline_html(inner)),
        Inline::Plain => escape(inner),
    })
}

/// The same inline Markdown as plain text.
pub fn plain(text: &str) -> String {
    inline(text, &|kind, inner, _| match kind {
        Inline::Code | Inline::Plain => inner.to_string(),
        Inline::Bold | Inline::Link => plain(inner),
    })
}

/// What a span of inline Markdown is.
enum Inline {
    Code,
    Bold,
    Link,
    Plain,
}

/// Splits `text` into spans and joins what `f` makes of each (kind, inner text, link target).
fn inline(text: &str, f: &dyn Fn(Inline, &str, &str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let span = if let Some(r) = rest.strip_prefix('`') {
            r.find('`').map(|end| (f(Inline::Code, &r[..end], ""), &r[end + 1..]))
        } else if let Some(r) = rest.strip_prefix("**") {
            r.find("**").map(|end| (f(Inline::Bold, &r[..end], ""), &r[end + 2..]))
        } else if let Some(r) = rest.strip_prefix('[') {
            r.find("](").and_then(|mid| {
                let close = r[mid..].find(')')? + mid;
                Some((f(Inline::Link, &r[..mid], &r[mid + 2..close]), &r[close + 1..]))
            })
        } else {
            rest.strip_prefix("\\|").map(|r| (f(Inline::Plain, "|", ""), r))
        };
        match span {
            Some((s, r)) => {
                out.push_str(&s);
                rest = r;
            }
            None => {
                let first = rest.chars().next().map_or(1, char::len_utf8);
                let next =
                    rest[first..].find(['`', '*', '[', '\\']).map_or(rest.len(), |i| i + first);
                out.push_str(&f(Inline::Plain, &rest[..next], ""));
                rest = &rest[next..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Vec<Block> {
        let mut t = Table::new(["case", "`tagged`"]);
        t.push(vec!["`H1`".into(), "**undetected**: a | b".into()]);
        vec![
            Block::Heading(2, "Quick & dirty".into()),
            Block::Figure("<svg/>".into()),
            Block::Table(t),
            Block::Text("See [the catalogue](../docs/hazards.md), `x<y>`.".into()),
        ]
    }

    #[test]
    fn markdown_joins_blocks_with_blank_lines_and_escapes_pipes() {
        assert_eq!(
            markdown(&doc()),
            "## Quick & dirty\n\n| case | `tagged` |\n|---|---|\n| `H1` | **undetected**: a \\| b |\n\n\
             See [the catalogue](../docs/hazards.md), `x<y>`.\n"
        );
    }

    #[test]
    fn html_renders_the_inline_markdown_instead_of_showing_it() {
        let h = html(&doc());
        assert!(h.contains("<h2>Quick &amp; dirty</h2>"), "{h}");
        assert!(h.contains("<th><code>tagged</code></th>"), "{h}");
        assert!(h.contains("<td><strong>undetected</strong>: a | b</td>"), "{h}");
        assert!(
            h.contains(
                "<a href=\"../docs/hazards.md\">the catalogue</a>, <code>x&lt;y&gt;</code>."
            ),
            "{h}"
        );
        assert!(h.contains("<figure><svg/></figure>"), "{h}");
        assert!(!h.contains("**") && !h.contains('`'), "{h}");
        // Markup that does not close is text.
        assert_eq!(inline_html("2 * 3 ** 4 [x"), "2 * 3 ** 4 [x");
        assert_eq!(inline_html("×1.00 (×2) `×`"), "×1.00 (×2) <code>×</code>");
    }

    #[test]
    fn console_strips_markup_and_aligns_columns() {
        let c = console(&doc());
        assert!(c.contains("  case  tagged\n  H1    undetected: a | b\n"), "{c}");
        assert!(c.contains("See the catalogue, x<y>."), "{c}");
        assert!(!c.contains("svg"), "{c}");
    }
}
