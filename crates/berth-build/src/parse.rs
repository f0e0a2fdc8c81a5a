//! Dockerfile text to instructions, with BuildKit's rules:
//! - parser directives (`# escape=`, `# syntax=`, `# check=`) only at the
//!   very top, each at most once; the first other line (blank, comment or
//!   instruction) ends them;
//! - a line whose last non-blank character is the escape character, not
//!   itself escaped, continues on the next line; comment lines and empty
//!   lines inside a continued instruction are skipped (the latter with a
//!   warning, as BuildKit deprecates them);
//! - the keyword is the first word, `--name[=value]` options follow until
//!   the first other word (or a lone `--`), and each instruction splits the
//!   rest in its own way (JSON array or shell text, words, `KEY=VALUE`
//!   pairs, ...), keeping quotes and escapes for the expansion step
//!   ([`crate::words`]);
//! - `RUN`, `COPY` and `ADD` in shell form may name heredocs (`<<EOF`,
//!   `<<-EOF`, `<<"EOF"`), whose bodies are the lines after the instruction.
//!
//! Unknown keywords parse (BuildKit's parser keeps them too); the builder
//! refuses them before it runs anything. [`Instruction::dump`] prints an
//! instruction as BuildKit's parser dumps its AST, which the tests compare
//! with BuildKit's own expected results.

use crate::words::{Lexer, NoVars};

/// One instruction as written, before variable expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-cased keyword: `FROM`, `RUN`, ...
    pub keyword: String,
    /// `--name=value` options as written (`--from=stage`, `--chown=1:1`,
    /// a bare `--flag`), quotes and escapes already removed.
    pub flags: Vec<String>,
    pub args: Args,
    /// Heredoc bodies named in the instruction, in order.
    pub heredocs: Vec<Heredoc>,
    /// The instruction's line with its continuations joined, trimmed
    /// (docker's build output shows it as the step).
    pub original: String,
    /// Its first and last line in the file, from 1 (heredoc bodies
    /// included in the last).
    pub line: usize,
    pub end_line: usize,
}

/// An instruction's arguments as BuildKit's parser splits them for each
/// keyword (quotes and escapes kept, variables not yet expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// No arguments at all.
    None,
    /// A JSON array of strings (exec form): RUN, CMD, ENTRYPOINT, SHELL,
    /// and the list form of ADD, COPY, VOLUME, and HEALTHCHECK's command.
    Json(Vec<String>),
    /// The rest of the line as one string: the shell form of RUN, CMD,
    /// ENTRYPOINT, SHELL; USER, WORKDIR, STOPSIGNAL, MAINTAINER.
    Text(String),
    /// Words split on blanks only (FROM, EXPOSE, ADD, COPY, VOLUME) or on
    /// blanks outside quotes (ARG).
    Words(Vec<String>),
    /// ENV and LABEL: `KEY=VALUE` pairs, or one `KEY VALUE` pair in the
    /// legacy form.
    Pairs(Vec<Pair>),
    /// HEALTHCHECK: its kind (`CMD`, `NONE`) and the command after it.
    Health { kind: String, command: Box<Args> },
    /// ONBUILD: the trigger instruction.
    Sub(Box<Instruction>),
    /// A keyword the parser does not know.
    Unknown,
}

/// One `KEY=VALUE` of ENV or LABEL (raw: quotes still in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    pub value: String,
    /// Written as `KEY VALUE` (the legacy form), not `KEY=VALUE`.
    pub legacy: bool,
}

/// A heredoc's body and how it was introduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word, quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when none.
    pub fd: u32,
    /// `<<-`: leading tabs are stripped from the body and the terminator.
    pub chomp: bool,
    /// Whether variables in the body are expanded (the name was unquoted).
    pub expand: bool,
    /// The body's lines, each with its line ending.
    pub content: String,
}

impl Heredoc {
    /// The body as the instruction uses it (leading tabs removed for `<<-`).
    pub fn body(&self) -> String {
        match self.chomp {
            false => self.content.clone(),
            true => self
                .content
                .split_inclusive('\n')
                .map(|l| l.trim_start_matches('\t'))
                .collect(),
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` unless a directive says `` ` ``).
    pub escape: char,
    pub instructions: Vec<Instruction>,
    /// What BuildKit warns about (empty continuation lines).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// A problem at a line of the file.
    #[error("Dockerfile parse error line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("Dockerfile parse error: file with no instructions")]
    Empty,
}

/// Keywords BuildKit's parser knows.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// The directives' state while the top of the file is read.
struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
}

impl Directives {
    /// Looks at `line` (blank-trimmed on the left for a first line) for a
    /// directive; any other line ends the directives.
    fn check(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        if name == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(format!(
                        "invalid escape token '{other}' does not match ` or \\"
                    ))
                }
            };
        }
        self.seen.push(name);
        Ok(())
    }
}

/// `# name = value`: a name of ASCII letters and digits (a letter first)
/// and a non-empty value, blanks around both trimmed.
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(go_space);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, after) = rest.split_at(name_len);
    let value = after
        .trim_start_matches(go_space)
        .strip_prefix('=')?
        .trim_matches(go_space);
    (!value.is_empty()).then_some((name, value))
}

/// Go regexp's `\s`: ASCII blanks only.
fn go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// BuildKit's `[\t\v\f\r ]`: the blanks that separate a keyword and words.
fn blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    trim_newline(line).trim_start().starts_with('#')
}

/// Removes a continuation escape at the end of `line` (blanks after it
/// allowed); returns the line and whether the instruction ends here. An
/// escape preceded by another one is an escaped escape, not a continuation.
fn continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let mut dirs = Directives {
        escape: '\\',
        done: false,
        seen: Vec::new(),
    };
    let at = |line: usize| move |message: String| ParseError::Line { line, message };
    let mut current = 0;
    let mut instructions = Vec::new();
    let mut warnings = Vec::new();
    while let Some(raw) = lines.next() {
        current += 1;
        let first = trim_newline(raw).trim_start();
        dirs.check(first).map_err(at(current))?;
        let start = current;
        let first = if first.starts_with('#') { "" } else { first };
        let (head, mut ended) = continuation(first, dirs.escape);
        if ended && head.is_empty() {
            continue;
        }
        let mut joined = head.to_string();
        let mut empty_continuation = false;
        while !ended {
            let Some(raw) = lines.next() else { break };
            current += 1;
            let next = trim_newline(raw);
            dirs.check(next).map_err(at(current))?;
            if is_comment(raw) {
                continue;
            }
            if next.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, end) = continuation(next, dirs.escape);
            joined.push_str(part);
            ended = end;
        }
        if empty_continuation {
            warnings.push(format!(
                "[WARNING]: Empty continuation line found in:\n    {joined}"
            ));
        }
        let mut ins = instruction(&joined, dirs.escape).map_err(at(start))?;
        for mut doc in heredoc_names(&ins) {
            let mut terminated = false;
            for raw in lines.by_ref() {
                current += 1;
                let mut candidate = trim_newline(raw);
                if doc.chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == doc.name {
                    terminated = true;
                    break;
                }
                doc.content.push_str(raw);
            }
            if !terminated {
                return Err(at(start)(format!(
                    "unterminated heredoc {:?} (no line holding only {:?} after it)",
                    doc.name, doc.name
                )));
            }
            ins.heredocs.push(doc);
        }
        ins.line = start;
        ins.end_line = current;
        instructions.push(ins);
    }
    if !warnings.is_empty() {
        warnings.push(
            "[WARNING]: Empty continuation lines will become errors in a future release.".into(),
        );
    }
    if instructions.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(Dockerfile {
        escape: dirs.escape,
        instructions,
        warnings,
    })
}

/// One instruction from its (joined) line.
pub fn instruction(line: &str, escape: char) -> Result<Instruction, String> {
    let line = line.trim();
    let (word, rest) = match line.find(blank) {
        Some(i) => (&line[..i], line[i..].trim_start_matches(blank)),
        None => (line, ""),
    };
    let keyword = word.to_ascii_uppercase();
    let (flags, rest) = match rest.is_empty() {
        true => (Vec::new(), ""),
        false => builder_flags(rest),
    };
    let rest = rest.trim();
    let args = match keyword.as_str() {
        "ADD" | "COPY" | "VOLUME" => match json(rest)? {
            Some(v) => Args::Json(v),
            None => whitespace_words(rest),
        },
        "ARG" => match parse_words(rest, escape) {
            w if w.is_empty() => Args::None,
            w => Args::Words(w),
        },
        "CMD" | "ENTRYPOINT" | "RUN" | "SHELL" => maybe_json(rest)?,
        "ENV" | "LABEL" => name_values(rest, &keyword, escape)?,
        "EXPOSE" | "FROM" => whitespace_words(rest),
        "HEALTHCHECK" => {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            match end {
                0 => Args::None,
                _ => Args::Health {
                    kind: rest[..end].to_string(),
                    command: Box::new(maybe_json(rest[end..].trim_start())?),
                },
            }
        }
        "MAINTAINER" | "STOPSIGNAL" | "USER" | "WORKDIR" => match rest.is_empty() {
            true => Args::None,
            false => Args::Text(rest.to_string()),
        },
        "ONBUILD" => match rest.is_empty() {
            true => Args::None,
            false => Args::Sub(Box::new(instruction(rest, escape)?)),
        },
        _ => Args::Unknown,
    };
    Ok(Instruction {
        keyword,
        flags,
        args,
        heredocs: Vec::new(),
        original: line.to_string(),
        line: 0,
        end_line: 0,
    })
}

/// Splits the leading `--flag[=value]` words off `rest`, as BuildKit does:
/// quotes and `\` work inside a flag word; a lone `--` ends the flags.
fn builder_flags(rest: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut pos = 0;
    let bytes = rest.as_bytes();
    loop {
        while pos < bytes.len() && (bytes[pos] as char).is_ascii_whitespace() {
            pos += 1;
        }
        if !rest[pos..].starts_with("--") {
            return (flags, &rest[pos..]);
        }
        let mut word = String::new();
        let mut quoted = false;
        let mut chars = rest[pos..].char_indices().peekable();
        let mut quote = None;
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    quoted = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    // `\` takes the next character; at the end it is dropped.
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                _ => word.push(c),
            }
        }
        if end == rest.len() {
            // The line ends inside the flags: there are no arguments.
            if word != "--" && (quoted || !word.is_empty()) {
                flags.push(word);
            }
            return (flags, "");
        }
        if word == "--" {
            return (flags, &rest[end..]);
        }
        flags.push(word);
        pos = end;
    }
}

/// `rest` as a JSON array of strings, if it is one (after blanks; what
/// follows the array is ignored as BuildKit's JSON decoder ignores it). An
/// array holding anything but strings is an error.
fn json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    let Some(Ok(serde_json::Value::Array(items))) = stream.next() else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => {
                Err("when using JSON array syntax, arrays must be comprised of strings only".into())
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn maybe_json(rest: &str) -> Result<Args, String> {
    if rest.is_empty() {
        return Ok(Args::None);
    }
    Ok(match json(rest)? {
        Some(v) => Args::Json(v),
        None => Args::Text(rest.to_string()),
    })
}

fn whitespace_words(rest: &str) -> Args {
    match rest.is_empty() {
        true => Args::None,
        false => Args::Words(
            rest.split(blank)
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
        ),
    }
}

/// Words split on blanks outside quotes; quotes and escapes are kept (the
/// expansion removes them), an escape at the very end is dropped.
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether the word exists even if empty (it had quotes).
    let mut started = false;
    let mut quote: Option<char> = None;
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match quote {
            None if c.is_whitespace() => {
                if started || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    started = true;
                }
                if c == escape {
                    let Some(&n) = chars.get(i) else { continue };
                    word.push(c);
                    word.push(n);
                    i += 1;
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    let Some(&n) = chars.get(i) else {
                        quote = None;
                        continue;
                    };
                    word.push(c);
                    word.push(n);
                    i += 1;
                    continue;
                }
                word.push(c);
            }
        }
    }
    if started || !word.is_empty() {
        words.push(word);
    }
    words
}

/// ENV and LABEL: `KEY=VALUE ...`, or the legacy `KEY VALUE` (the rest of
/// the line the value) when the first word has no `=`.
fn name_values(rest: &str, keyword: &str, escape: char) -> Result<Args, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Args::None);
    };
    if !first.contains('=') {
        let Some(i) = rest.find(blank) else {
            return Err(format!("{keyword} must have two arguments"));
        };
        return Ok(Args::Pairs(vec![Pair {
            key: rest[..i].to_string(),
            value: rest[i..].trim_start_matches(blank).to_string(),
            legacy: true,
        }]));
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok(Pair {
                key: k.to_string(),
                value: v.to_string(),
                legacy: false,
            }),
            None => Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )),
        })
        .collect::<Result<_, _>>()
        .map(Args::Pairs)
}

/// The heredocs an instruction names (bodies still empty): RUN, COPY and
/// ADD in shell form, also as an ONBUILD trigger.
fn heredoc_names(ins: &Instruction) -> Vec<Heredoc> {
    let target = match &ins.args {
        Args::Sub(sub) if ins.keyword == "ONBUILD" => sub,
        _ => ins,
    };
    if !matches!(target.keyword.as_str(), "RUN" | "COPY" | "ADD")
        || matches!(target.args, Args::Json(_))
    {
        return Vec::new();
    }
    if !ins.original.contains("<<") {
        return Vec::new();
    }
    let raw = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Lexer::new('\\')
    };
    raw.process_words(&ins.original, &NoVars)
        .unwrap_or_default()
        .iter()
        .filter_map(|w| heredoc_word(w))
        .collect()
}

/// A word `[n]<<[-]NAME` as a heredoc (NAME may be quoted, which turns
/// expansion of the body off).
pub fn heredoc_word(word: &str) -> Option<Heredoc> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let plain = Lexer {
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let words = plain.process_words(rest, &NoVars).ok()?;
    let [name] = words.as_slice() else {
        return None;
    };
    let raw = Lexer {
        raw_quotes: true,
        ..plain
    };
    let raw_words = raw.process_words(rest, &NoVars).ok()?;
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Some(Heredoc {
        name: name.clone(),
        fd: word[..digits].parse().unwrap_or(0),
        chomp,
        expand: raw_words.len() == 1 && quotes(name) == quotes(&raw_words[0]),
        content: String::new(),
    })
}

impl Instruction {
    /// The instruction's `--name=value` options as pairs (a bare `--name`
    /// is `true`).
    pub fn flag_pairs(&self) -> Vec<(String, String)> {
        self.flags
            .iter()
            .map(|f| {
                let f = f.strip_prefix("--").unwrap_or(f);
                match f.split_once('=') {
                    Some((n, v)) => (n.to_string(), v.to_string()),
                    None => (f.to_string(), "true".to_string()),
                }
            })
            .collect()
    }

    /// The text after the keyword, as written.
    pub fn text(&self) -> &str {
        let word_end = self.original.find(blank).unwrap_or(self.original.len());
        self.original[word_end..].trim_start_matches(blank)
    }

    /// The instruction as BuildKit's parser dumps its AST:
    /// `(keyword ["--flag"] "arg" ...)`.
    pub fn dump(&self) -> String {
        let mut out = self.keyword.to_ascii_lowercase();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            out.push_str(&format!(" [{}]", flags.join(" ")));
        }
        let mut values = |vs: &[String]| {
            for v in vs {
                out.push(' ');
                out.push_str(&go_quote(v));
            }
        };
        match &self.args {
            Args::None => {}
            Args::Json(v) | Args::Words(v) => values(v),
            Args::Text(t) => values(std::slice::from_ref(t)),
            Args::Pairs(pairs) => {
                for p in pairs {
                    let sep = if p.legacy { "" } else { "=" };
                    values(&[p.key.clone(), p.value.clone(), sep.to_string()]);
                }
            }
            Args::Health { kind, command } => {
                values(std::slice::from_ref(kind));
                match command.as_ref() {
                    Args::Json(v) => values(v),
                    Args::Text(t) => values(std::slice::from_ref(t)),
                    _ => {}
                }
            }
            Args::Sub(sub) => {
                out.push(' ');
                out.push_str(&sub.dump());
            }
            Args::Unknown => values(&[String::new()]),
        }
        format!("({})", out.trim())
    }
}

/// Go's strconv.Quote: `"`-quoted, `\` escapes for quotes, backslashes
/// and non-printable characters.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c == ' ' || !(c.is_control() || c.is_whitespace() || is_format(c)) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Unicode format characters Go does not print as they are (a common few).
fn is_format(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumps(text: &str) -> Vec<String> {
        parse(text)
            .unwrap()
            .instructions
            .iter()
            .map(Instruction::dump)
            .collect()
    }

    #[test]
    fn continuations_comments_and_forms() {
        let df = parse(
            "# escape=\\\nFROM busybox AS first\n\n# a comment\nRUN echo a \\\n  # inside\n\n  && echo b\nCMD [\"sh\", \"-c\", \"x\"]\nCOPY --from=first --chown=1:2 /a /b\n",
        )
        .unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!(
            i[0].args,
            Args::Words(vec!["busybox".into(), "AS".into(), "first".into()])
        );
        assert_eq!(i[1].args, Args::Text("echo a   && echo b".into()));
        assert_eq!((i[1].line, i[1].end_line), (5, 8));
        assert_eq!(df.warnings.len(), 2, "{:?}", df.warnings);
        assert_eq!(
            i[2].args,
            Args::Json(vec!["sh".into(), "-c".into(), "x".into()])
        );
        assert_eq!(
            i[3].flag_pairs(),
            vec![
                ("from".into(), "first".into()),
                ("chown".into(), "1:2".into())
            ]
        );
        assert_eq!(i[3].args, Args::Words(vec!["/a".into(), "/b".into()]));
        assert_eq!(i[3].text(), "--from=first --chown=1:2 /a /b");
    }

    #[test]
    fn directives_and_errors() {
        let df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  /w\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].args, Args::Text("dir c:\\   /w".into()));
        // A directive after a comment is a comment.
        let df = parse("# hello\n# escape=`\nFROM x\n").unwrap();
        assert_eq!(df.escape, '\\');
        assert!(parse("# escape=`\n# escape=\\\nFROM x\n").is_err());
        assert!(parse("# escape=x\nFROM x\n").is_err());
        assert_eq!(
            parse("\n# only a comment\n").unwrap_err(),
            ParseError::Empty
        );
        let e = parse("FROM x\nENV PATH\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile parse error line 2: ENV must have two arguments"
        );
        assert!(parse("FROM x\nCMD [\"a\", 1]\n").is_err());
        // Unknown keywords parse; the builder refuses them.
        assert_eq!(dumps("FROBNICATE y\n"), ["(frobnicate \"\")"]);
    }

    #[test]
    fn escaped_escape_does_not_continue() {
        assert_eq!(
            dumps("ENV C a\\\\\nENV D x\nENV E b\\\n\\\nc\n"),
            [
                "(env \"C\" \"a\\\\\\\\\" \"\")",
                "(env \"D\" \"x\" \"\")",
                "(env \"E\" \"bc\" \"\")"
            ]
        );
    }

    #[test]
    fn flags() {
        assert_eq!(
            dumps("COPY --a=\"x y\" --b -- --c d\nCMD --x\n"),
            [
                "(copy [\"--a=x y\" \"--b\"] \"--c\" \"d\")",
                "(cmd [\"--x\"])"
            ]
        );
    }

    #[test]
    fn heredocs() {
        let df = parse(
            "FROM x\nRUN <<EOF\necho $A\nEOF\nCOPY <<-\"ONE\" <<TWO /dest/\n\tfirst\n\tONE\nsecond\nTWO\nRUN [\"<<EOF\"]\n",
        )
        .unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!(i[1].heredocs.len(), 1);
        let h = &i[1].heredocs[0];
        assert_eq!((h.name.as_str(), h.expand, h.chomp), ("EOF", true, false));
        assert_eq!(h.content, "echo $A\n");
        assert_eq!((i[1].line, i[1].end_line), (2, 4));
        let docs = &i[2].heredocs;
        assert_eq!(docs.len(), 2);
        assert_eq!(
            (docs[0].name.as_str(), docs[0].expand, docs[0].chomp),
            ("ONE", false, true)
        );
        assert_eq!(docs[0].body(), "first\n");
        assert_eq!(docs[1].content, "second\n");
        assert!(i[3].heredocs.is_empty());
        assert!(parse("FROM x\nRUN <<EOF\nno end\n").is_err());
        assert_eq!(heredoc_word("3<<END").map(|h| h.fd), Some(3));
        assert_eq!(heredoc_word("<<"), None);
        assert_eq!(heredoc_word("a<<b"), None);
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote("a\"b\\c\n\u{0}♥"), "\"a\\\"b\\\\c\\n\\x00♥\"");
        assert_eq!(go_quote("\u{a0}"), "\"\\u00a0\"");
    }
}
