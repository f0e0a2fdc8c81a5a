//! Words and variables in instruction arguments, as BuildKit's shell lexer
//! treats them: whitespace splits words outside quotes, quotes are removed,
//! the escape character takes the next one literally (in double quotes only
//! before `"`, `$` and itself), and `$VAR`, `${VAR}`, `${VAR:-default}` and
//! `${VAR:+alternative}` expand outside single quotes.

/// Looks a variable up (build args and ENV, the builder decides).
pub trait Vars {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Vars for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WordError {
    #[error("unterminated quote in {0:?}")]
    Quote(String),
    #[error("bad variable substitution in {0:?}")]
    Substitution(String),
}

/// Splits `text` into words, expanding variables from `vars`.
pub fn words(text: &str, escape: char, vars: &dyn Vars) -> Result<Vec<String>, WordError> {
    lex(text, escape, vars, true)
}

/// Expands variables in `text` and removes quotes, keeping it one word
/// (WORKDIR, USER, and each `key=value` of ENV and LABEL).
pub fn expand(text: &str, escape: char, vars: &dyn Vars) -> Result<String, WordError> {
    Ok(lex(text, escape, vars, false)?.join(""))
}

fn lex(text: &str, escape: char, vars: &dyn Vars, split: bool) -> Result<Vec<String>, WordError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    // Whether the current word exists even if empty ("" is a word).
    let mut started = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if split && c.is_whitespace() {
            if started {
                out.push(std::mem::take(&mut word));
                started = false;
            }
            i += 1;
            continue;
        }
        started = true;
        if c == escape {
            if let Some(&n) = chars.get(i + 1) {
                word.push(n);
                i += 2;
            } else {
                word.push(c);
                i += 1;
            }
            continue;
        }
        match c {
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '\'')
                    .ok_or_else(|| WordError::Quote(text.to_string()))?;
                word.extend(&chars[i + 1..i + 1 + end]);
                i += end + 2;
            }
            '"' => {
                i += 1;
                loop {
                    let Some(&d) = chars.get(i) else {
                        return Err(WordError::Quote(text.to_string()));
                    };
                    if d == '"' {
                        i += 1;
                        break;
                    }
                    if d == escape && matches!(chars.get(i + 1), Some('"' | '$')) {
                        word.push(chars[i + 1]);
                        i += 2;
                    } else if d == escape && chars.get(i + 1) == Some(&escape) {
                        word.push(escape);
                        i += 2;
                    } else if d == '$' {
                        i = variable(&chars, i, escape, vars, &mut word, text)?;
                    } else {
                        word.push(d);
                        i += 1;
                    }
                }
            }
            '$' => i = variable(&chars, i, escape, vars, &mut word, text)?,
            _ => {
                word.push(c);
                i += 1;
            }
        }
    }
    if started || (!split && out.is_empty()) {
        out.push(word);
    }
    Ok(out)
}

/// Expands the variable at `chars[at]` (a `$`) into `word`; returns the
/// index after it.
fn variable(
    chars: &[char],
    at: usize,
    escape: char,
    vars: &dyn Vars,
    word: &mut String,
    text: &str,
) -> Result<usize, WordError> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut i = at + 1;
    if chars.get(i) == Some(&'{') {
        let close = chars[i..]
            .iter()
            .position(|&c| c == '}')
            .ok_or_else(|| WordError::Substitution(text.to_string()))?
            + i;
        let inner: String = chars[i + 1..close].iter().collect();
        let name_len = inner.find(|c: char| !is_name(c)).unwrap_or(inner.len());
        let (name, op) = inner.split_at(name_len);
        if name.is_empty() {
            return Err(WordError::Substitution(text.to_string()));
        }
        let value = vars.get(name);
        let set = value.as_deref().is_some_and(|v| !v.is_empty());
        match op {
            "" => word.push_str(&value.unwrap_or_default()),
            _ if op.starts_with(":-") => match set {
                true => word.push_str(&value.unwrap_or_default()),
                false => word.push_str(&expand(&op[2..], escape, vars)?),
            },
            _ if op.starts_with(":+") => {
                if set {
                    word.push_str(&expand(&op[2..], escape, vars)?)
                }
            }
            _ => return Err(WordError::Substitution(text.to_string())),
        }
        return Ok(close + 1);
    }
    let start = i;
    while i < chars.len() && is_name(chars[i]) {
        i += 1;
    }
    if i == start {
        // A lone `$` stays.
        word.push('$');
        return Ok(i);
    }
    let name: String = chars[start..i].iter().collect();
    word.push_str(&vars.get(&name).unwrap_or_default());
    Ok(i)
}

/// `KEY=VALUE ...` pairs of ENV, LABEL and ARG, or the legacy `KEY VALUE`
/// (one pair, the rest of the line the value) when the first word has no `=`.
pub fn pairs(
    text: &str,
    escape: char,
    vars: &dyn Vars,
) -> Result<Vec<(String, Option<String>)>, WordError> {
    let raw = split_raw(text, escape);
    let first_has_eq = raw.first().is_some_and(|w| w.contains('='));
    if !first_has_eq && raw.len() > 1 {
        let key = expand(&raw[0], escape, vars)?;
        let rest = text.trim_start()[raw[0].len()..].trim();
        return Ok(vec![(key, Some(expand(rest, escape, vars)?))]);
    }
    raw.iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((expand(k, escape, vars)?, Some(expand(v, escape, vars)?))),
            None => Ok((expand(w, escape, vars)?, None)),
        })
        .collect()
}

/// Splits on whitespace outside quotes, keeping quotes and escapes.
fn split_raw(text: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            word.push(c);
            if let Some(n) = chars.next() {
                word.push(n);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "SP" => Some("x y".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn words_quotes_and_variables() {
        let w = |t| words(t, '\\', &env).unwrap();
        assert_eq!(w("a 'b c' \"d $A\" e\\ f"), ["a", "b c", "d a", "e f"]);
        assert_eq!(
            w("'$A' ${A}x ${NONE:-dflt} ${A:+alt} ${EMPTY:-e}"),
            ["$A", "ax", "dflt", "alt", "e"]
        );
        assert_eq!(w("\"\" $"), ["", "$"]);
        assert!(words("'open", '\\', &env).is_err());
        assert_eq!(expand("/w/$A", '\\', &env).unwrap(), "/w/a");
    }

    #[test]
    fn env_and_label_pairs() {
        let p = |t| pairs(t, '\\', &env).unwrap();
        assert_eq!(
            p("K=v K2=\"two words\" K3=$A"),
            [
                ("K".into(), Some("v".into())),
                ("K2".into(), Some("two words".into())),
                ("K3".into(), Some("a".into()))
            ]
        );
        assert_eq!(
            p("KEY value with spaces"),
            [("KEY".into(), Some("value with spaces".into()))]
        );
        assert_eq!(p("NAME"), [("NAME".into(), None)]);
    }
}
