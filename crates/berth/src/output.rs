//! Tables and `--format`: docker's formatter contexts (a header row from
//! the same template, columns aligned by a tabwriter with docker's
//! settings: min width 10, padding 3).

use std::io::Write;

use serde_json::{Map, Value};

use crate::template::{Template, TemplateError};

/// How rows are printed: a table (with header) or one template per row.
pub struct Format {
    template: Template,
    table: bool,
}

impl Format {
    /// `spec` as given to `--format`: `table ...` or a bare template;
    /// `default` is the table used when `spec` is empty.
    pub fn new(spec: &str, default: &str) -> Result<Format, TemplateError> {
        let spec = if spec.is_empty() || spec == "table" {
            default
        } else {
            spec
        };
        if let Some(rest) = spec.strip_prefix("table") {
            let t = rest.trim_start_matches(' ');
            return Ok(Format {
                template: Template::parse(&unescape(t))?,
                table: true,
            });
        }
        if spec == "json" {
            return Ok(Format {
                template: Template::parse("{{json .}}")?,
                table: false,
            });
        }
        Ok(Format {
            template: Template::parse(&unescape(spec))?,
            table: false,
        })
    }

    /// Prints `rows` (and, for tables, the header rendered from `headers`,
    /// a map from field name to column title).
    pub fn print(
        &self,
        headers: &[(&str, &str)],
        rows: &[Value],
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let mut text = String::new();
        if self.table {
            let mut h = Map::new();
            for (k, v) in headers {
                h.insert((*k).to_string(), Value::String((*v).to_string()));
            }
            let line = self.template.render(&Value::Object(h))?;
            text.push_str(&line.replace("<no value>", ""));
            text.push('\n');
        }
        for r in rows {
            text.push_str(&self.template.render_row(r)?);
            text.push('\n');
        }
        if self.table {
            let mut tw = docker_tabwriter(Vec::new(), 10);
            tw.write_all(text.as_bytes())?;
            tw.flush()?;
            out.write_all(&tw.into_inner()?)?;
        } else {
            out.write_all(text.as_bytes())?;
        }
        out.flush()?;
        Ok(())
    }
}

/// Go's tabwriter makes a column `max(cell + padding, minwidth)` wide; this
/// crate makes it `max(cell, minwidth) + padding`: subtracting the padding
/// from the minimum gives Go's widths.
pub fn docker_tabwriter<W: Write>(w: W, go_minwidth: usize) -> tabwriter::TabWriter<W> {
    tabwriter::TabWriter::new(w)
        .minwidth(go_minwidth - 3)
        .padding(3)
}

/// docker lets users write `\t` in a format on the command line.
fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

/// Re-indents raw JSON with 4 spaces, keeping the daemon's key order and
/// escapes (`json.Indent`, as `docker inspect` prints).
pub fn indent_json(raw: &[u8], prefix_level: usize) -> String {
    let mut out = String::with_capacity(raw.len() * 2);
    let mut level = prefix_level;
    let mut in_str = false;
    let mut escape = false;
    let text = String::from_utf8_lossy(raw);
    let chars: Vec<char> = text.trim().chars().collect();
    let nl = |out: &mut String, level: usize| {
        out.push('\n');
        for _ in 0..level {
            out.push_str("    ");
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            out.push(c);
            if escape {
                escape = false;
            } else if c == '\\' {
                escape = true;
            } else if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                // Empty containers stay `{}` / `[]`.
                let close = if c == '{' { '}' } else { ']' };
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == close {
                    out.push(c);
                    out.push(close);
                    i = j + 1;
                    continue;
                }
                out.push(c);
                level += 1;
                nl(&mut out, level);
            }
            '}' | ']' => {
                level = level.saturating_sub(1);
                nl(&mut out, level);
                out.push(c);
            }
            ',' => {
                out.push(c);
                nl(&mut out, level);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_has_header_and_columns() {
        let f = Format::new("", "table {{.ID}}\t{{.Name}}").unwrap();
        let mut out = Vec::new();
        f.print(
            &[("ID", "CONTAINER ID"), ("Name", "NAME")],
            &[json!({"ID": "abc", "Name": "x"})],
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "CONTAINER ID   NAME\nabc            x\n"
        );
    }

    #[test]
    fn indents_like_go() {
        let s = indent_json(br#"{"b":1,"a":[1,{"x":"a,b:{"}],"e":{},"f":[]}"#, 0);
        assert_eq!(
            s,
            "{\n    \"b\": 1,\n    \"a\": [\n        1,\n        {\n            \"x\": \"a,b:{\"\n        }\n    ],\n    \"e\": {},\n    \"f\": []\n}"
        );
    }
}
