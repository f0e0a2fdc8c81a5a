//! Dockerfile text to instructions, with BuildKit's lexical rules: parser
//! directives (`# escape=`, `# syntax=`) only before anything else, comment
//! lines dropped (also inside a continued instruction), a line ending in the
//! escape character continued on the next, empty continuation lines
//! skipped, and `--flag=value` options before the arguments.

/// One instruction as written, before variable expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-cased keyword: `FROM`, `RUN`, ...
    pub keyword: String,
    /// `--name=value` options, in order (`--from=stage`, `--chown=1:1`).
    pub flags: Vec<(String, String)>,
    pub args: Args,
    /// The instruction's text after its keyword, continuations joined, for
    /// build output ("Step 2/5 : RUN ...").
    pub text: String,
    /// Its first line in the file, from 1.
    pub line: usize,
}

/// An instruction's arguments: a JSON string array (exec form), or the
/// text (shell form, which each instruction splits in its own way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    Json(Vec<String>),
    Shell(String),
}

impl Args {
    /// The exec form as is; the shell form as one string.
    pub fn shell_text(&self) -> String {
        match self {
            Args::Json(v) => v.join(" "),
            Args::Shell(s) => s.clone(),
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` unless a directive says `` ` ``).
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("Dockerfile line {line}: unknown instruction: {word}")]
    UnknownInstruction { line: usize, word: String },
    #[error("Dockerfile line {line}: {keyword} requires at least one argument")]
    MissingArguments { line: usize, keyword: String },
    #[error("Dockerfile: invalid escape directive {0:?}: it must be \\ or `")]
    BadEscape(String),
    #[error("Dockerfile line {line}: {0}", line = .1)]
    Invalid(String, usize),
    #[error("the Dockerfile has no instructions")]
    Empty,
}

/// Instructions the builder knows; anything else is an error naming it.
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

/// Instructions whose shell form is an exec-or-shell command line, kept
/// as one string (the others are split into words by the builder).
const TAKES_FLAGS: &[&str] = &["ADD", "COPY", "FROM", "RUN", "HEALTHCHECK"];

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, mut i) = directives(&lines)?;
    let mut instructions = Vec::new();
    while i < lines.len() {
        let first = i;
        let line = lines[i].trim_start();
        i += 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        // Join continuations: a line whose last non-blank char is the escape.
        let mut joined = String::new();
        let mut current = line.to_string();
        loop {
            let trimmed = current.trim_end();
            if let Some(body) = trimmed.strip_suffix(escape) {
                joined.push_str(body);
                // The next line that is neither empty nor a comment.
                let mut next = None;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let t = l.trim_start();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    next = Some(l.to_string());
                    break;
                }
                match next {
                    Some(n) => current = n,
                    None => break,
                }
            } else {
                joined.push_str(&current);
                break;
            }
        }
        instructions.push(instruction(&joined, first + 1)?);
    }
    if instructions.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}

/// Reads the leading parser directives; returns the escape character and
/// the index of the first line after them.
fn directives(lines: &[&str]) -> Result<(char, usize), ParseError> {
    let mut escape = '\\';
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = lines[i].trim().strip_prefix('#') else {
            break;
        };
        let Some((name, value)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        if name.contains(char::is_whitespace) {
            break;
        }
        match name.as_str() {
            "escape" => {
                escape = match value.trim() {
                    "\\" => '\\',
                    "`" => '`',
                    other => return Err(ParseError::BadEscape(other.to_string())),
                }
            }
            "syntax" | "check" => {}
            _ => break,
        }
        i += 1;
    }
    Ok((escape, i))
}

fn instruction(text: &str, line: usize) -> Result<Instruction, ParseError> {
    let text = text.trim();
    let (word, rest) = match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    };
    let keyword = word.to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(ParseError::UnknownInstruction {
            line,
            word: word.to_string(),
        });
    }
    let mut rest = rest;
    let mut flags = Vec::new();
    if TAKES_FLAGS.contains(&keyword.as_str()) {
        while let Some(flag) = rest.strip_prefix("--") {
            let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
            let (name, value) = match flag[..end].split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (flag[..end].to_string(), "true".to_string()),
            };
            if name.is_empty() {
                break;
            }
            flags.push((name, value));
            rest = flag[end..].trim_start();
        }
    }
    if rest.is_empty() && !matches!(keyword.as_str(), "RUN" | "CMD" | "ENTRYPOINT") {
        return Err(ParseError::MissingArguments { line, keyword });
    }
    let args = match rest.starts_with('[') {
        true => match serde_json::from_str::<Vec<String>>(rest) {
            Ok(v) => Args::Json(v),
            // Not a JSON array of strings: the shell form, as docker does.
            Err(_) => Args::Shell(rest.to_string()),
        },
        false => Args::Shell(rest.to_string()),
    };
    Ok(Instruction {
        keyword,
        flags,
        args,
        text: text[word.len()..].trim().to_string(),
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_and_forms() {
        let df = parse(
            "# escape=\\\nFROM busybox AS first\n\n# a comment\nRUN echo a \\\n  # inside\n\n  && echo b\nCMD [\"sh\", \"-c\", \"x\"]\nCOPY --from=first --chown=1:2 /a /b\n",
        )
        .unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!(i[0].args, Args::Shell("busybox AS first".into()));
        assert_eq!(i[1].args, Args::Shell("echo a   && echo b".into()));
        assert_eq!(i[1].line, 5);
        assert_eq!(
            i[2].args,
            Args::Json(vec!["sh".into(), "-c".into(), "x".into()])
        );
        assert_eq!(
            i[3].flags,
            vec![
                ("from".into(), "first".into()),
                ("chown".into(), "1:2".into())
            ]
        );
        assert_eq!(i[3].args, Args::Shell("/a /b".into()));
    }

    #[test]
    fn backtick_escape_and_errors() {
        let df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  /w\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].args, Args::Shell("dir c:\\   /w".into()));
        assert_eq!(
            parse("FROM x\nFROBNICATE y\n").unwrap_err(),
            ParseError::UnknownInstruction {
                line: 2,
                word: "FROBNICATE".into()
            }
        );
        assert!(matches!(
            parse("FROM x\nCOPY\n").unwrap_err(),
            ParseError::MissingArguments { .. }
        ));
        assert_eq!(
            parse("\n# only a comment\n").unwrap_err(),
            ParseError::Empty
        );
    }
}
