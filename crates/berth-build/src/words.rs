//! Variables and quotes in instruction arguments, as BuildKit's shell
//! lexer treats them:
//! - `'...'` keeps everything literally; `"..."` keeps everything except
//!   `$` expansions, and the escape character in it only escapes `"`, `$`
//!   and itself; outside quotes the escape character takes the next
//!   character literally (and is dropped at the very end);
//! - `$NAME`, `${NAME}`, `${NAME:-word}` / `${NAME-word}` (default),
//!   `${NAME:+word}` / `${NAME+word}` (alternative), `${NAME:?word}` /
//!   `${NAME?word}` (error when unset or empty), `${NAME#pat}`,
//!   `${NAME##pat}`, `${NAME%pat}`, `${NAME%%pat}` (prefix and suffix
//!   removal); `word` may itself hold quotes and expansions; positional
//!   (`$1`) and special (`$@`, `$#`, ...) parameters are never set; a `$`
//!   not followed by a name stays;
//! - [`Lexer::process_word`] gives one string (ENV values, WORKDIR, ...);
//!   [`Lexer::process_words`] also splits words on blanks outside quotes,
//!   including blanks that unquoted expansions bring in.

/// Looks a variable up: `None` when unset, `Some("")` when set but empty.
pub trait Vars {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Vars for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// No variables at all.
pub struct NoVars;

impl Vars for NoVars {
    fn get(&self, _: &str) -> Option<String> {
        None
    }
}

/// `NAME=VALUE` strings (an image's Env); the first entry of a name wins.
impl Vars for Vec<String> {
    fn get(&self, name: &str) -> Option<String> {
        self.iter().find_map(|e| match e.split_once('=') {
            Some((k, v)) if k == name => Some(v.to_string()),
            None if e == name => Some(String::new()),
            _ => None,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("failed to process {text:?}: {message}")]
pub struct WordError {
    /// The text being expanded.
    pub text: String,
    pub message: String,
}

/// The lexer's settings.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// `\` or `` ` `` (the Dockerfile's escape directive).
    pub escape: char,
    /// Keep quote characters in the output (heredoc detection).
    pub raw_quotes: bool,
    /// Keep escape characters in the output (heredoc detection).
    pub raw_escapes: bool,
    /// Leave unset variables as written instead of expanding them to "".
    pub skip_unset: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
        }
    }

    /// `text` with variables expanded and quotes removed, as one string.
    pub fn process_word(&self, text: &str, vars: &dyn Vars) -> Result<String, WordError> {
        self.run(text, vars).map(|(word, _)| word)
    }

    /// `text` with variables expanded, split into words.
    pub fn process_words(&self, text: &str, vars: &dyn Vars) -> Result<Vec<String>, WordError> {
        self.run(text, vars).map(|(_, words)| words)
    }

    fn run(&self, text: &str, vars: &dyn Vars) -> Result<(String, Vec<String>), WordError> {
        let mut s = Scan {
            lx: self,
            vars,
            chars: text.chars().collect(),
            pos: 0,
        };
        s.until(None).map_err(|message| WordError {
            text: text.to_string(),
            message,
        })
    }
}

/// `text` expanded as one string, with escape character `escape`.
pub fn expand(text: &str, escape: char, vars: &dyn Vars) -> Result<String, WordError> {
    Lexer::new(escape).process_word(text, vars)
}

/// `text` expanded and split into words, with escape character `escape`.
pub fn words(text: &str, escape: char, vars: &dyn Vars) -> Result<Vec<String>, WordError> {
    Lexer::new(escape).process_words(text, vars)
}

/// The words being collected by [`Lexer::process_words`].
#[derive(Default)]
struct Split {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Split {
    /// An unquoted character: a blank ends the word.
    fn char(&mut self, c: char) {
        if !c.is_whitespace() {
            self.raw_char(c);
        } else if self.in_word && !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    fn raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn str(&mut self, s: &str) {
        s.chars().for_each(|c| self.char(c));
    }

    fn raw_str(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Scan<'a> {
    lx: &'a Lexer,
    vars: &'a dyn Vars,
    chars: Vec<char>,
    pos: usize,
}

type Res<T> = Result<T, String>;

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Reads up to `stop` (consumed) or the end; returns the text and its words.
    fn until(&mut self, stop: Option<char>) -> Res<(String, Vec<String>)> {
        let mut result = String::new();
        let mut split = Split::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, split.finish()));
            }
            match c {
                '\'' => {
                    let s = self.single_quoted()?;
                    result.push_str(&s);
                    split.raw_str(&s);
                }
                '"' => {
                    let s = self.double_quoted()?;
                    result.push_str(&s);
                    split.raw_str(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    split.str(&s);
                }
                _ => {
                    self.pos += 1;
                    if c != self.lx.escape {
                        split.char(c);
                        result.push(c);
                        continue;
                    }
                    if self.lx.raw_escapes {
                        split.raw_char(c);
                        result.push(c);
                    }
                    // An escape at the very end is dropped.
                    let Some(n) = self.next() else { break };
                    split.raw_char(n);
                    result.push(n);
                }
            }
        }
        match stop {
            Some(s) => Err(unterminated(&s.to_string())),
            None => Ok((result, split.finish())),
        }
    }

    /// Consumes a quote character, kept in `out` with `raw_quotes`.
    fn quote(&mut self, out: &mut String) {
        if let Some(q) = self.next().filter(|_| self.lx.raw_quotes) {
            out.push(q);
        }
    }

    fn single_quoted(&mut self) -> Res<String> {
        let mut out = String::new();
        self.quote(&mut out);
        loop {
            match self.peek() {
                None => return Err(unterminated("single-quote")),
                Some('\'') => {
                    self.quote(&mut out);
                    return Ok(out);
                }
                Some(c) => {
                    self.pos += 1;
                    out.push(c)
                }
            }
        }
    }

    fn double_quoted(&mut self) -> Res<String> {
        let mut out = String::new();
        self.quote(&mut out);
        loop {
            match self.peek() {
                None => return Err(unterminated("double-quote")),
                Some('"') => {
                    self.quote(&mut out);
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(c) => {
                    self.pos += 1;
                    if c == self.lx.escape {
                        match self.peek() {
                            // Dropped; the missing quote is the error.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lx.escape => {
                                if self.lx.raw_escapes {
                                    out.push(c);
                                }
                                self.pos += 1;
                                out.push(n);
                                continue;
                            }
                            _ => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// A `$...` expansion (the `$` is next).
    fn dollar(&mut self) -> Res<String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.vars.get(&name) {
                Some(v) => v,
                None if self.lx.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.name();
        let value = self.vars.get(&name);
        let op = self.next();
        let (colon, modifier) = match op {
            Some('}') => {
                return Ok(match value {
                    Some(v) => v,
                    None if self.lx.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                })
            }
            Some(':') => (true, self.next()),
            Some(c @ ('-' | '+' | '?' | '#' | '%')) => (false, Some(c)),
            _ => return Err("missing ':' in substitution".into()),
        };
        // `##` and `%%`: the longest match.
        let mut longest = false;
        if !colon && matches!(modifier, Some('#' | '%')) && self.peek() == modifier {
            self.pos += 1;
            longest = true;
        }
        let word = self.word_until_brace()?;
        let unset_kept = || {
            let m = modifier.map(String::from).unwrap_or_default();
            let doubled = if longest { m.clone() } else { String::new() };
            format!(
                "${{{name}{}{m}{doubled}{word}}}",
                if colon { ":" } else { "" }
            )
        };
        if value.is_none() && self.lx.skip_unset {
            return Ok(unset_kept());
        }
        // With `:`, an empty value counts as unset.
        let set = match colon {
            true => value.as_deref().is_some_and(|v| !v.is_empty()),
            false => value.is_some(),
        };
        match modifier {
            Some('-') => Ok(if set { value.unwrap_or_default() } else { word }),
            Some('+') => Ok(if set { word } else { String::new() }),
            Some('?') if set => Ok(value.unwrap_or_default()),
            Some('?') => {
                let what = match (value.is_some(), word.is_empty()) {
                    (_, false) => word,
                    (false, true) => "is not allowed to be unset".into(),
                    (true, true) => "is not allowed to be empty".into(),
                };
                Err(format!("{name}: {what}"))
            }
            Some(m @ ('#' | '%')) if !colon => {
                let v = value.unwrap_or_default();
                Ok(strip_pattern(&v, &word, m == '#', longest))
            }
            Some(m) => Err(format!("unsupported modifier ({m}) in substitution")),
            None => Err("syntax error: missing '}'".into()),
        }
    }

    /// The word of `${NAME<op>word}`, up to the closing brace.
    fn word_until_brace(&mut self) -> Res<String> {
        match self.until(Some('}')) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err("syntax error: missing '}'".into()),
            Err(e) => Err(e),
        }
    }

    /// A variable name: digits (a positional parameter), one special
    /// parameter character, or letters, digits and `_`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_numeric() => {
                while let Some(c) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(c);
                    self.pos += 1;
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                return c.to_string();
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|&c| c.is_alphanumeric() || c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }
}

fn unterminated(what: &str) -> String {
    format!("unexpected end of statement while looking for matching {what}")
}

/// `${v#pat}` / `${v%pat}`: `v` without its shortest (or longest) prefix
/// (or suffix) matching the glob `pat`.
fn strip_pattern(v: &str, pat: &str, prefix: bool, longest: bool) -> String {
    let bounds: Vec<usize> = v
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(v.len()))
        .collect();
    let p: Vec<char> = pat.chars().collect();
    let fits = |s: &str| crate::ignore::glob(&p, &s.chars().collect::<Vec<_>>());
    let mut order: Vec<usize> = bounds.clone();
    match (prefix, longest) {
        (true, false) | (false, true) => {}
        (true, true) | (false, false) => order.reverse(),
    }
    for i in order {
        let (part, rest) = match prefix {
            true => (&v[..i], &v[i..]),
            false => (&v[i..], &v[..i]),
        };
        if fits(part) {
            return rest.to_string();
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "SP" => Some("x y".into()),
            "EMPTY" => Some(String::new()),
            "PATHV" => Some("/usr/local/bin/tool.tar.gz".into()),
            _ => None,
        }
    }

    #[test]
    fn words_quotes_and_variables() {
        let w = |t| words(t, '\\', &env).unwrap();
        assert_eq!(w("a 'b c' \"d $A\" e\\ f"), ["a", "b c", "d a", "e f"]);
        assert_eq!(
            w("'$A' ${A}x ${NONE:-dflt} ${A:+alt} ${EMPTY:-e} ${EMPTY-e}"),
            ["$A", "ax", "dflt", "alt", "e"]
        );
        assert_eq!(w("$SP \"$SP\""), ["x", "y", "x y"]);
        assert_eq!(w("\"\" $"), ["$"]);
        assert!(words("'open", '\\', &env).is_err());
        assert_eq!(expand("/w/$A", '\\', &env).unwrap(), "/w/a");
        assert_eq!(expand("a`$A", '`', &env).unwrap(), "a$A");
    }

    #[test]
    fn patterns_and_errors() {
        let e = |t| expand(t, '\\', &env);
        assert_eq!(e("${PATHV#*/}").unwrap(), "usr/local/bin/tool.tar.gz");
        assert_eq!(e("${PATHV##*/}").unwrap(), "tool.tar.gz");
        assert_eq!(e("${PATHV%.*}").unwrap(), "/usr/local/bin/tool.tar");
        assert_eq!(e("${PATHV%%.*}").unwrap(), "/usr/local/bin/tool");
        assert_eq!(e("${NONE+x}${A+x}").unwrap(), "x");
        assert_eq!(
            e("${NONE:?must be set}").unwrap_err().to_string(),
            "failed to process \"${NONE:?must be set}\": NONE: must be set"
        );
        assert!(e("${A:=x}").is_err());
    }

    #[test]
    fn raw_modes_keep_quotes_escapes_and_unset() {
        let lx = Lexer {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
            ..Lexer::new('\\')
        };
        assert_eq!(
            lx.process_words("RUN <<'EOF' a\\ b $X ${Y:-z}", &NoVars)
                .unwrap(),
            ["RUN", "<<'EOF'", "a\\ b", "$X", "${Y:-z}"]
        );
    }
}
