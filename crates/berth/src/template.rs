//! The subset of Go's text/template that users write in `--format`:
//! `{{.Field.Sub}}`, `{{json .}}`, `{{range}}`/`{{if}}`/`{{with}}` ...
//! `{{else}}` ... `{{end}}`, variables (`$`, `$k, $v :=`), pipelines
//! (`|`), string and number literals, parentheses, and docker's functions
//! (`json`, `lower`, `upper`, `title`, `join`, `split`, `index`, `len`,
//! `print`, `println`, `printf`, `eq`, `ne`, `not`, `and`, `or`, `pad`,
//! `truncate`).
//!
//! Data is JSON: docker's templates see Go structs whose field names match
//! the JSON keys up to case (`APIVersion` vs `ApiVersion`), so a field that
//! is not found exactly is looked up ignoring case.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template parsing error: template: :{pos}: {msg}")]
    Parse { pos: usize, msg: String },
    #[error("template: :{action}: executing: {msg}")]
    Exec { action: String, msg: String },
}

impl berth_errdefs::HasKind for TemplateError {
    fn kind(&self) -> berth_errdefs::ErrorKind {
        berth_errdefs::ErrorKind::InvalidArgument
    }
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
}

/// A pipeline with optional variable declarations (`$k, $v := ...`).
#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
    text: String,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` (empty path: `.`).
    Field(Vec<String>),
    /// `$name.A.B`.
    Var(String, Vec<String>),
    Ident(String),
    Lit(Value),
    Sub(Pipe),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let tokens = lex(src)?;
        let mut pos = 0;
        let (nodes, end) = parse_list(&tokens, &mut pos)?;
        if let Some(e) = end {
            return Err(TemplateError::Parse {
                pos: 1,
                msg: format!("unexpected {{{{{e}}}}}"),
            });
        }
        Ok(Template { nodes })
    }

    /// Renders the template with `data` as `.`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        self.render_vars(vec![("$".to_string(), data.clone())])
    }

    /// Renders a row of a list (`ps`, `images`, ...): there `{{json .}}` is
    /// docker's formatter context marshalling itself, which escapes `<`,
    /// `>` and `&` (`\u003c`); everywhere else docker's `json` does not.
    pub fn render_row(&self, data: &Value) -> Result<String, TemplateError> {
        self.render_vars(vec![
            ("$".to_string(), data.clone()),
            (ROW_MARK.to_string(), Value::Bool(true)),
        ])
    }

    fn render_vars(&self, mut vars: Vars) -> Result<String, TemplateError> {
        let mut out = String::new();
        let data = vars[0].1.clone();
        let data = &data;
        exec_list(&self.nodes, data, &mut vars, &mut out)?;
        Ok(out)
    }
}

/// A variable no template can name (`$` then NUL): set while rendering a
/// list row, see [`Template::render_row`].
const ROW_MARK: &str = "$\0row";

enum Tok {
    Text(String),
    Action(String),
}

fn lex(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let mut toks = Vec::new();
    let mut rest = src;
    let mut line = 1;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        let mut inner = &rest[start + 2..];
        if inner.starts_with("- ") {
            text = text.trim_end().to_string();
            inner = &inner[2..];
        }
        line += text.matches('\n').count();
        if !text.is_empty() {
            toks.push(Tok::Text(text));
        }
        let end = find_action_end(inner).ok_or(TemplateError::Parse {
            pos: line,
            msg: "unclosed action".into(),
        })?;
        let mut action = &inner[..end];
        rest = &inner[end + 2..];
        if action.ends_with(" -") {
            action = &action[..action.len() - 2];
            rest = rest.trim_start();
        }
        let action = action.trim();
        // Comments produce nothing.
        if !(action.starts_with("/*") && action.ends_with("*/")) {
            toks.push(Tok::Action(action.to_string()));
        }
    }
    if !rest.is_empty() {
        toks.push(Tok::Text(rest.to_string()));
    }
    Ok(toks)
}

/// The `}}` that closes an action, skipping ones inside string literals.
fn find_action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q == b'"' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None => {
                if b[i] == b'"' || b[i] == b'`' {
                    quote = Some(b[i]);
                } else if b[i] == b'}' && b.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

fn perr(msg: impl Into<String>) -> TemplateError {
    TemplateError::Parse {
        pos: 1,
        msg: msg.into(),
    }
}

/// Parses nodes until `{{end}}` or `{{else}}` (returned) or the end.
fn parse_list(toks: &[Tok], pos: &mut usize) -> Result<(Vec<Node>, Option<String>), TemplateError> {
    let mut nodes = Vec::new();
    while *pos < toks.len() {
        let tok = &toks[*pos];
        *pos += 1;
        match tok {
            Tok::Text(t) => nodes.push(Node::Text(t.clone())),
            Tok::Action(a) => {
                let (kw, rest) = match a.split_once(char::is_whitespace) {
                    Some((k, r)) => (k, r.trim()),
                    None => (a.as_str(), ""),
                };
                match kw {
                    "end" | "else" => return Ok((nodes, Some(a.clone()))),
                    "if" | "with" | "range" => {
                        let pipe = parse_pipe(rest)?;
                        let (body, end) = parse_list(toks, pos)?;
                        let mut alt = Vec::new();
                        match end.as_deref() {
                            Some("end") => {}
                            Some(e) if e.starts_with("else") => {
                                let chained = e["else".len()..].trim();
                                if let Some(cond) = chained.strip_prefix("if ") {
                                    // `{{else if x}}` is `{{else}}{{if x}}...{{end}}`.
                                    let p = parse_pipe(cond.trim())?;
                                    let (b2, end2) = parse_list(toks, pos)?;
                                    let mut alt2 = Vec::new();
                                    if end2.as_deref() != Some("end") {
                                        if end2.as_deref() == Some("else") {
                                            let (a2, e3) = parse_list(toks, pos)?;
                                            if e3.as_deref() != Some("end") {
                                                return Err(perr("missing {{end}}"));
                                            }
                                            alt2 = a2;
                                        } else {
                                            return Err(perr("missing {{end}}"));
                                        }
                                    }
                                    alt.push(Node::If(p, b2, alt2));
                                } else {
                                    let (a2, e2) = parse_list(toks, pos)?;
                                    if e2.as_deref() != Some("end") {
                                        return Err(perr("missing {{end}}"));
                                    }
                                    alt = a2;
                                }
                            }
                            _ => return Err(perr(format!("unexpected EOF in {kw}"))),
                        }
                        nodes.push(match kw {
                            "if" => Node::If(pipe, body, alt),
                            "with" => Node::With(pipe, body, alt),
                            _ => Node::Range(pipe, body, alt),
                        });
                    }
                    _ => nodes.push(Node::Action(parse_pipe(a)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

fn parse_pipe(src: &str) -> Result<Pipe, TemplateError> {
    let mut s = src.trim();
    let mut decl = Vec::new();
    // `$a, $b := pipeline` or `$a := pipeline`.
    if s.starts_with('$') {
        if let Some(i) = s.find(":=") {
            let names = &s[..i];
            if names
                .split(',')
                .all(|n| n.trim().starts_with('$') && !n.trim().contains(' '))
            {
                decl = names.split(',').map(|n| n.trim().to_string()).collect();
                s = s[i + 2..].trim();
            }
        }
    }
    let words = split_words(s)?;
    let mut cmds = vec![Vec::new()];
    for w in words {
        if w == "|" {
            cmds.push(Vec::new());
            continue;
        }
        cmds.last_mut().unwrap().push(parse_arg(&w)?);
    }
    if cmds.iter().any(Vec::is_empty) {
        return Err(perr(format!("missing value for command in {src:?}")));
    }
    Ok(Pipe {
        decl,
        cmds,
        text: src.to_string(),
    })
}

/// Splits an action into words: literals and parenthesised groups stay whole.
fn split_words(s: &str) -> Result<Vec<String>, TemplateError> {
    let mut words = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == '"' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if c == '"' && chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(perr("unterminated quoted string"));
            }
            i += 1;
        } else if c == '(' {
            let mut depth = 0;
            while i < chars.len() {
                match chars[i] {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(perr("unclosed left paren"));
            }
            i += 1;
        } else if c == '|' {
            i += 1;
        } else {
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '|' {
                i += 1;
            }
        }
        words.push(chars[start..i].iter().collect());
    }
    Ok(words)
}

fn parse_arg(w: &str) -> Result<Arg, TemplateError> {
    let fields = |s: &str| -> Vec<String> {
        s.split('.')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    Ok(if w.starts_with('(') {
        Arg::Sub(parse_pipe(&w[1..w.len() - 1])?)
    } else if w.starts_with('.') {
        Arg::Field(fields(w))
    } else if let Some(v) = w.strip_prefix('$') {
        let (name, path) = match v.find('.') {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, ""),
        };
        Arg::Var(format!("${name}"), fields(path))
    } else if w.starts_with('"') {
        Arg::Lit(Value::String(
            serde_json::from_str::<String>(w).map_err(|_| perr(format!("bad string {w}")))?,
        ))
    } else if w.starts_with('`') {
        Arg::Lit(Value::String(w[1..w.len() - 1].to_string()))
    } else if w == "true" || w == "false" {
        Arg::Lit(Value::Bool(w == "true"))
    } else if w == "nil" {
        Arg::Lit(Value::Null)
    } else if w.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        Arg::Lit(
            serde_json::from_str::<Value>(w)
                .map_err(|_| perr(format!("bad number syntax: {w:?}")))?,
        )
    } else if w.chars().all(|c| c.is_alphanumeric() || c == '_') {
        Arg::Ident(w.to_string())
    } else {
        return Err(perr(format!("unexpected {w:?} in command")));
    })
}

type Vars = Vec<(String, Value)>;

fn exec_list(
    nodes: &[Node],
    dot: &Value,
    vars: &mut Vars,
    out: &mut String,
) -> Result<(), TemplateError> {
    for n in nodes {
        let mark = vars.len();
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipe(p, dot, vars)?;
                if p.decl.is_empty() {
                    out.push_str(&go_print(&v));
                } else {
                    // A declaration prints nothing and lives to the end of the list.
                    continue;
                }
            }
            Node::If(p, body, alt) => {
                let v = eval_pipe(p, dot, vars)?;
                exec_list(if truthy(&v) { body } else { alt }, dot, vars, out)?;
            }
            Node::With(p, body, alt) => {
                let v = eval_pipe(p, dot, vars)?;
                if truthy(&v) {
                    exec_list(body, &v, vars, out)?;
                } else {
                    exec_list(alt, dot, vars, out)?;
                }
            }
            Node::Range(p, body, alt) => {
                let v = eval_pipe_value(p, dot, vars)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x.clone()))
                        .collect(),
                    Value::Object(m) => m
                        .iter()
                        .map(|(k, x)| (Value::String(k.clone()), x.clone()))
                        .collect(),
                    Value::Null => Vec::new(),
                    other => {
                        return Err(exec_err(
                            p,
                            format!("range can't iterate over {}", go_print(other)),
                        ))
                    }
                };
                if items.is_empty() {
                    exec_list(alt, dot, vars, out)?;
                }
                for (k, x) in items {
                    let m = vars.len();
                    match p.decl.len() {
                        1 => vars.push((p.decl[0].clone(), x.clone())),
                        2 => {
                            vars.push((p.decl[0].clone(), k));
                            vars.push((p.decl[1].clone(), x.clone()));
                        }
                        _ => {}
                    }
                    exec_list(body, &x, vars, out)?;
                    vars.truncate(m);
                }
            }
        }
        vars.truncate(mark);
    }
    Ok(())
}

fn exec_err(p: &Pipe, msg: String) -> TemplateError {
    TemplateError::Exec {
        action: p.text.clone(),
        msg,
    }
}

/// Evaluates a pipeline; a declaration binds its variable (for actions).
fn eval_pipe(p: &Pipe, dot: &Value, vars: &mut Vars) -> Result<Value, TemplateError> {
    let v = eval_pipe_value(p, dot, vars)?;
    if p.decl.len() == 1 {
        vars.push((p.decl[0].clone(), v.clone()));
    }
    Ok(v)
}

fn eval_pipe_value(p: &Pipe, dot: &Value, vars: &Vars) -> Result<Value, TemplateError> {
    let mut prev: Option<Value> = None;
    for cmd in &p.cmds {
        let mut args = Vec::new();
        let (first, rest) = cmd.split_first().expect("commands are non-empty");
        let v = match first {
            Arg::Ident(name) => {
                for a in rest {
                    args.push(eval_arg(a, p, dot, vars)?);
                }
                if let Some(x) = prev.take() {
                    args.push(x);
                }
                let whole_row = name == "json"
                    && matches!(rest, [Arg::Field(path)] if path.is_empty())
                    && vars.iter().any(|(n, _)| n == ROW_MARK);
                if whole_row {
                    let json =
                        serde_json::to_string(&args[0]).map_err(|e| exec_err(p, e.to_string()))?;
                    Value::String(html_escape(&json))
                } else {
                    call(name, &args)
                        .map_err(|m| exec_err(p, format!("error calling {name}: {m}")))?
                }
            }
            Arg::Field(path)
                if rest.len() == 1
                    && prev.is_none()
                    && path.last().is_some_and(|l| l == "Label") =>
            {
                let key = as_str(&eval_arg(&rest[0], p, dot, vars)?);
                label(&walk(dot, &path[..path.len() - 1]), &key)
            }
            other => {
                if !rest.is_empty() || prev.is_some() {
                    return Err(exec_err(p, "can't give argument to non-function".into()));
                }
                eval_arg(other, p, dot, vars)?
            }
        };
        prev = Some(v);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn eval_arg(a: &Arg, p: &Pipe, dot: &Value, vars: &Vars) -> Result<Value, TemplateError> {
    match a {
        Arg::Field(path) => Ok(walk(dot, path)),
        Arg::Var(name, path) => {
            let v = vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .ok_or_else(|| exec_err(p, format!("undefined variable: {name}")))?;
            Ok(walk(v, path))
        }
        Arg::Lit(v) => Ok(v.clone()),
        Arg::Sub(sp) => eval_pipe_value(sp, dot, vars),
        Arg::Ident(name) => {
            call(name, &[]).map_err(|m| exec_err(p, format!("error calling {name}: {m}")))
        }
    }
}

/// `.A.B`: exact key first, then ignoring case (Go field vs JSON key names).
/// A missing key is `null`, printed `<no value>`.
fn walk(v: &Value, path: &[String]) -> Value {
    let mut cur = v;
    for key in path {
        let Value::Object(m) = cur else {
            return Value::Null;
        };
        cur = match m.get(key) {
            Some(x) => x,
            None => match m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                Some((_, x)) => x,
                None => return Value::Null,
            },
        };
    }
    cur.clone()
}

/// docker's `.Label "name"` method of ps, volume and network rows: one
/// label's value from `Labels` (a map, or the table's `k=v,k=v` string);
/// empty when the label is not set.
fn label(row: &Value, key: &str) -> Value {
    let labels = walk(row, &["Labels".to_string()]);
    let found = match &labels {
        Value::Object(m) => m.get(key).map(as_str),
        Value::String(s) => s
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string()),
        _ => None,
    };
    Value::String(found.unwrap_or_default())
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn as_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => go_print(other),
    }
}

fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    let want = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("wrong number of args: want {n} got {}", args.len()))
        }
    };
    Ok(match name {
        "json" => {
            want(1)?;
            Value::String(serde_json::to_string(&args[0]).map_err(|e| e.to_string())?)
        }
        "lower" => {
            want(1)?;
            Value::String(as_str(&args[0]).to_lowercase())
        }
        "upper" => {
            want(1)?;
            Value::String(as_str(&args[0]).to_uppercase())
        }
        "title" => {
            want(1)?;
            let s = as_str(&args[0]);
            let mut out = String::new();
            let mut start = true;
            for c in s.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            Value::String(out)
        }
        "join" => {
            want(2)?;
            let parts: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(as_str).collect(),
                Value::Null => Vec::new(),
                other => vec![as_str(other)],
            };
            Value::String(parts.join(&as_str(&args[1])))
        }
        "split" => {
            want(2)?;
            let s = as_str(&args[0]);
            let sep = as_str(&args[1]);
            Value::Array(
                s.split(sep.as_str())
                    .map(|x| Value::String(x.into()))
                    .collect(),
            )
        }
        "index" => {
            if args.is_empty() {
                return Err("wrong number of args: want at least 1 got 0".into());
            }
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match (&cur, k) {
                    (Value::Object(m), key) => m.get(&as_str(key)).cloned().unwrap_or(Value::Null),
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_u64().ok_or("index must be a non-negative integer")? as usize;
                        a.get(i)
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    (Value::Null, _) => Value::Null,
                    (other, _) => {
                        return Err(format!("can't index item of type {}", type_name(other)))
                    }
                };
            }
            cur
        }
        "len" => {
            want(1)?;
            Value::from(match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(s) => s.len(),
                Value::Null => 0,
                other => return Err(format!("len of type {}", type_name(other))),
            })
        }
        "print" => Value::String(go_sprint(args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(go_print).collect();
            Value::String(parts.join(" ") + "\n")
        }
        "printf" => {
            let (fmt, rest) = args.split_first().ok_or("printf needs a format")?;
            Value::String(sprintf(&as_str(fmt), rest))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            Value::Bool(args[1..].iter().any(|a| values_eq(&args[0], a)))
        }
        "ne" => {
            want(2)?;
            Value::Bool(!values_eq(&args[0], &args[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let ord = compare(&args[0], &args[1])?;
            Value::Bool(match name {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        "slice" => {
            if args.is_empty() {
                return Err("wrong number of args: want at least 1 got 0".into());
            }
            let bound = |i: usize, len: usize| -> Result<usize, String> {
                match args.get(i) {
                    None => Ok(if i == 1 { 0 } else { len }),
                    Some(v) => v
                        .as_u64()
                        .map(|n| n as usize)
                        .filter(|n| *n <= len)
                        .ok_or_else(|| format!("index out of range: {}", go_print(v))),
                }
            };
            match &args[0] {
                Value::String(s) => {
                    let (from, to) = (bound(1, s.len())?, bound(2, s.len())?);
                    if from > to {
                        return Err(format!("invalid slice index: {from} > {to}"));
                    }
                    Value::String(s.get(from..to).ok_or("slice inside a character")?.into())
                }
                Value::Array(a) => {
                    let (from, to) = (bound(1, a.len())?, bound(2, a.len())?);
                    if from > to {
                        return Err(format!("invalid slice index: {from} > {to}"));
                    }
                    Value::Array(a[from..to].to_vec())
                }
                other => return Err(format!("can't slice item of type {}", type_name(other))),
            }
        }
        "not" => {
            want(1)?;
            Value::Bool(!truthy(&args[0]))
        }
        "and" => args
            .iter()
            .find(|a| !truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => args
            .iter()
            .find(|a| truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "pad" => {
            want(3)?;
            let n = |v: &Value| v.as_u64().unwrap_or(0) as usize;
            // docker pads nothing around an empty string.
            if as_str(&args[0]).is_empty() {
                return Ok(Value::String(String::new()));
            }
            Value::String(format!(
                "{}{}{}",
                " ".repeat(n(&args[1])),
                as_str(&args[0]),
                " ".repeat(n(&args[2]))
            ))
        }
        "truncate" => {
            want(2)?;
            let n = args[1].as_u64().unwrap_or(0) as usize;
            Value::String(as_str(&args[0]).chars().take(n).collect())
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

/// Go's `json.Marshal` escapes `<`, `>` and `&` (`\u003c`).
fn html_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// `lt`, `le`, `gt`, `ge`: numbers with numbers, strings with strings.
fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .zip(y.as_f64())
            .and_then(|(x, y)| x.partial_cmp(&y))
            .ok_or_else(|| "incomparable numbers".into()),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn values_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// Go's `fmt.Sprint`: spaces only between operands that are not strings.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_print(a));
    }
    out
}

/// `%s`, `%v`, `%d`, `%f`, `%q` and `%%`; widths and precisions like
/// `%-10s`, `%.4s`, `%6.2f`.
fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d == '-' || d == '.' || d.is_ascii_digit() {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = it.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let (width, precision) = match spec.trim_start_matches('-').split_once('.') {
            Some((w, p)) => (w, Some(p.parse::<usize>().unwrap_or(0))),
            None => (spec.trim_start_matches('-'), None),
        };
        let s = match (verb, precision) {
            ('q', _) => serde_json::to_string(&as_str(a)).unwrap_or_default(),
            ('f' | 'F', p) => format!("{:.*}", p.unwrap_or(6), a.as_f64().unwrap_or(0.0)),
            ('s' | 'v', Some(p)) => go_print(a).chars().take(p).collect(),
            _ => go_print(a),
        };
        let left = spec.starts_with('-');
        let width: usize = width.parse().unwrap_or(0);
        let pad = width.saturating_sub(s.chars().count());
        if left {
            out.push_str(&s);
            out.push_str(&" ".repeat(pad));
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&s);
        }
    }
    out
}

/// A value as Go's `fmt.Print` shows a decoded JSON value.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if n.is_f64() {
                go_float(n.as_f64().unwrap_or(0.0))
            } else {
                n.to_string()
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(go_print_inner).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_print_inner(&m[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn go_print_inner(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => go_print(other),
    }
}

/// Go's `%v` for a float64: shortest digits, exponent form below 1e-4 or
/// from 1e21 up.
fn go_float(f: f64) -> String {
    if f == f.trunc() && f.abs() < 1e21 {
        return format!("{}", f as i128);
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().render(&v).unwrap()
    }

    #[test]
    fn fields_and_functions() {
        let v = json!({"ID": "abc", "State": {"Status": "running"}, "Names": ["a", "b"],
                       "Labels": {"x": "1", "a": "2"}, "ApiVersion": "1.41", "Size": 12});
        assert_eq!(r("{{.ID}} {{.State.Status}}", v.clone()), "abc running");
        assert_eq!(r("{{.APIVersion}}", v.clone()), "1.41");
        assert_eq!(r("{{.Missing}}", v.clone()), "<no value>");
        assert_eq!(r("{{json .Names}}", v.clone()), r#"["a","b"]"#);
        assert_eq!(r("{{join .Names \",\"}}", v.clone()), "a,b");
        assert_eq!(r("{{lower .State.Status | upper}}", v.clone()), "RUNNING");
        assert_eq!(r("{{index .Labels \"x\"}}", v.clone()), "1");
        assert_eq!(r("{{.Labels}}", v.clone()), "map[a:2 x:1]");
        assert_eq!(r("{{.Names}} {{.Size}}", v.clone()), "[a b] 12");
        assert_eq!(r("{{range .Names}}<{{.}}>{{end}}", v.clone()), "<a><b>");
        assert_eq!(
            r(
                "{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}",
                v.clone()
            ),
            "a=2;x=1;"
        );
        assert_eq!(
            r(
                "{{if eq .State.Status \"running\"}}up{{else}}down{{end}}",
                v.clone()
            ),
            "up"
        );
        assert_eq!(r("{{with .State}}{{.Status}}{{end}}", v.clone()), "running");
        assert_eq!(r("{{printf \"%-5s|\" .ID}}", v.clone()), "abc  |");
        assert_eq!(r("{{len .Names}} {{$.ID}}", v.clone()), "2 abc");
        assert_eq!(r("a {{- \" b \" -}} c", v.clone()), "a b c");
        assert_eq!(r("{{if .Nope}}x{{else if .ID}}y{{end}}", v.clone()), "y");
        assert_eq!(
            r("{{slice .ID 1 2}} {{slice .Names 1}}", v.clone()),
            "b [b]"
        );
        assert_eq!(
            r("{{lt 1 2}} {{ge .Size 13}} {{gt \"b\" \"a\"}}", v.clone()),
            "true false true"
        );
        assert_eq!(
            r("{{printf \"%.2s|%5.1f\" .ID 2.25}}", v.clone()),
            "ab|  2.2"
        );
        assert_eq!(r("{{.Label \"x\"}}|{{.Label \"no\"}}", v.clone()), "1|");
        assert_eq!(r("{{.Label \"k\"}}", json!({"Labels": "j=1,k=2"})), "2");
        assert_eq!(r("{{json .}}", json!("<a&b>")), r#""<a&b>""#);
        let t = Template::parse("{{json .}} {{json .A}}").unwrap();
        assert_eq!(
            t.render_row(&json!({"A": "<"})).unwrap(),
            r#"{"A":"\u003c"} "<""#
        );
    }

    #[test]
    fn errors() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{range .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        let t = Template::parse("{{nosuch .}}").unwrap();
        assert!(t.render(&json!({})).is_err());
    }

    #[test]
    fn floats_print_as_go() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(3.0), "3");
        assert_eq!(go_float(1e-7), "1e-07");
    }
}
