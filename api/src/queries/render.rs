//! Filling a query file: its `{slots}` with filters, choices and subqueries, its `:params` with
//! bound values. Comments and quoted text are copied as they are (a `:` or `{` there is text).

use std::collections::BTreeMap;

use dealhouse_warehouse::datafusion::common::ScalarValue;

use super::QueryFile;
use crate::Error;
use crate::query::{Args, Kind, Sql, date_value};

/// How deep `{query.NAME}` may nest (a cycle stops here).
const MAX_DEPTH: usize = 8;

/// A piece of a query file's text.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    /// SQL copied as it is (comments and quoted text included).
    Text(&'a str),
    /// `{name}`.
    Slot(&'a str),
    /// `:name`.
    Param(&'a str),
}

fn tokens(text: &str) -> Result<Vec<Token<'_>>, String> {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut out = vec![];
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            // A doubled quote inside a string ends it and starts the next: the same span.
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => {
                let len = text[i..].find('}').ok_or_else(|| format!("`{{` without `}}` at byte {i}"))?;
                let name = &text[i + 1..i + len];
                if name.is_empty() || !name.bytes().all(|b| ident(b) || b == b'.') {
                    return Err(format!("`{{{name}}}` is not a slot name"));
                }
                out.push(Token::Text(&text[start..i]));
                out.push(Token::Slot(name));
                i += len + 1;
                start = i;
            }
            b':' if bytes.get(i + 1) == Some(&b':') => i += 2,
            b':' if bytes.get(i + 1).is_some_and(|b| b.is_ascii_lowercase() || *b == b'_') => {
                let end = (i + 1..bytes.len()).find(|j| !ident(bytes[*j])).unwrap_or(bytes.len());
                out.push(Token::Text(&text[start..i]));
                out.push(Token::Param(&text[i + 1..end]));
                i = end;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push(Token::Text(&text[start..]));
    Ok(out)
}

/// `a = f(x, y), b = z` -> `["a = f(x, y)", "b = z"]`: commas outside parentheses and quotes.
pub(super) fn split_top_level(list: &str) -> Vec<&str> {
    let mut out = vec![];
    let (mut depth, mut quote, mut start) = (0i32, None, 0);
    for (i, c) in list.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(list[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(list[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// The parameters a file names: in its SQL, its filters and its choices (and the choices' own).
#[cfg(test)]
pub(super) fn params_of(file: &QueryFile) -> Result<Vec<String>, Error> {
    let mut texts: Vec<&str> = vec![&file.text];
    texts.extend(file.filters.values().flatten().map(String::as_str));
    texts.extend(file.choices.values().flatten().map(|(_, f)| f.as_str()));
    let mut out: Vec<String> = file.choices.keys().cloned().collect();
    for t in texts {
        for token in tokens(t).map_err(|m| bad(file, m))? {
            if let Token::Param(p) = token
                && !out.iter().any(|o| o == p)
            {
                out.push(p.to_string());
            }
        }
    }
    Ok(out)
}

/// The file with no parameter given: filters `true`, choices their default, values null.
pub(super) fn schema_text(files: &BTreeMap<String, QueryFile>, file: &QueryFile) -> Result<String, Error> {
    Renderer { files, args: None, sql: Sql::default(), bound: BTreeMap::new(), depth: 0 }.file(file)
}

/// The file filled with the request's parameters: its SQL and the bound values.
pub(super) fn bind(files: &BTreeMap<String, QueryFile>, file: &QueryFile, args: &Args) -> Result<(String, Sql), Error> {
    let mut r = Renderer { files, args: Some(args), sql: Sql::default(), bound: BTreeMap::new(), depth: 0 };
    let text = r.file(file)?;
    Ok((text, r.sql))
}

fn bad(file: &QueryFile, message: impl Into<String>) -> Error {
    Error::QueryFile { origin: file.origin.clone(), message: message.into() }
}

struct Renderer<'a> {
    files: &'a BTreeMap<String, QueryFile>,
    /// None: no request (the schema's plan); every value is then a null.
    args: Option<&'a Args>,
    sql: Sql,
    /// `(parameter, after in)` -> its placeholder text, so a value is bound once.
    bound: BTreeMap<(String, bool), String>,
    depth: usize,
}

impl Renderer<'_> {
    fn file(&mut self, file: &QueryFile) -> Result<String, Error> {
        self.text(file, &file.text)
    }

    fn text(&mut self, file: &QueryFile, text: &str) -> Result<String, Error> {
        let mut out = String::with_capacity(text.len());
        for token in tokens(text).map_err(|m| bad(file, m))? {
            match token {
                Token::Text(t) => out.push_str(t),
                Token::Slot(name) => {
                    let filled = self.slot(file, name)?;
                    out.push_str(&filled);
                }
                Token::Param(name) => {
                    let value = self.param(file, name, after_in(&out))?;
                    out.push_str(&value);
                }
            }
        }
        Ok(out)
    }

    fn slot(&mut self, file: &QueryFile, name: &str) -> Result<String, Error> {
        if let Some(other) = name.strip_prefix("query.") {
            let inner =
                self.files.get(other).ok_or_else(|| bad(file, format!("`{{{name}}}`: no query file `{other}`")))?;
            if self.depth >= MAX_DEPTH {
                return Err(bad(file, format!("`{{{name}}}` nests deeper than {MAX_DEPTH} (a cycle?)")));
            }
            self.depth += 1;
            let text = self.file(inner)?;
            self.depth -= 1;
            // On lines of their own: the file may end in a comment.
            return Ok(format!("(\n{text}\n)"));
        }
        if let Some(table) = name.strip_prefix("tables.") {
            let catalog = crate::semantic::catalog().map_err(|e| bad(file, e))?;
            let t = catalog
                .tables
                .get(table)
                .ok_or_else(|| bad(file, format!("`{{{name}}}`: metrics.toml has no [tables.{table}]")))?;
            return Ok(t.source_sql());
        }
        if let Some(conditions) = file.filters.get(name) {
            let mut parts = vec![];
            for condition in conditions {
                // A condition applies only when every parameter it names is given.
                let names = tokens(condition).map_err(|m| bad(file, m))?;
                let given = names.iter().all(|t| match t {
                    Token::Param(p) => self.args.is_some_and(|a| a.is_given(p)),
                    _ => true,
                });
                if given {
                    parts.push(format!("({})", self.text(file, condition)?));
                }
            }
            return Ok(if parts.is_empty() { "true".to_string() } else { parts.join(" and ") });
        }
        if let Some(options) = file.choices.get(name) {
            let fragment = match self.args.and_then(|a| a.one(name)) {
                None => options.first().map(|(_, f)| f.clone()).unwrap_or_default(),
                Some(v) => options
                    .iter()
                    .find(|(k, _)| k == v)
                    .map(|(_, f)| f.clone())
                    .ok_or_else(|| bad(file, format!("`{name}={v}` is none of the choices at {{{name}}}")))?,
            };
            return self.text(file, &fragment);
        }
        Err(bad(file, format!("`{{{name}}}` is no filter, choice, query.NAME or tables.NAME")))
    }

    fn param(&mut self, file: &QueryFile, name: &str, in_list: bool) -> Result<String, Error> {
        let Some(args) = self.args else {
            return Ok(if in_list { "(null)" } else { "null" }.to_string());
        };
        if let Some(done) = self.bound.get(&(name.to_string(), in_list)) {
            return Ok(done.clone());
        }
        let param = args.param(name).ok_or_else(|| bad(file, format!("`:{name}` is not a parameter of the route")))?;
        let rendered = match param.kind {
            Kind::List if in_list => {
                let values = args.list(name);
                if values.is_empty() {
                    "(null)".to_string()
                } else {
                    format!("({})", values.iter().map(|v| self.sql.text(v)).collect::<Vec<_>>().join(", "))
                }
            }
            Kind::List => self.sql.bind(ScalarValue::Utf8(args.list(name).first().cloned())),
            Kind::Enum(_) => self.sql.bind(ScalarValue::Utf8(args.one(name).map(str::to_string))),
            Kind::Month => {
                let month = args.month(name).map_err(|e| bad(file, e.message))?;
                self.sql.bind(date_value(month))
            }
            Kind::Date => {
                let day = args.date(name).map_err(|e| bad(file, e.message))?;
                self.sql.bind(date_value(day))
            }
            Kind::Integer(max) => {
                let n = args.integer(name, max).map_err(|e| bad(file, e.message))?;
                self.sql.bind(ScalarValue::Int64(n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))))
            }
        };
        self.bound.insert((name.to_string(), in_list), rendered.clone());
        Ok(rendered)
    }
}

/// Whether SQL text ends with the keyword `in` (so a list parameter follows it).
fn after_in(sql: &str) -> bool {
    let t = sql.trim_end();
    let lower = t.len() >= 2 && t[t.len() - 2..].eq_ignore_ascii_case("in");
    lower && !t[..t.len() - 2].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_skip_comments_quotes_and_casts() {
        let t = tokens("select x::date, ':no', \"{no}\" -- :no {no}\nfrom t where a in :branch and b = {f}").unwrap();
        let special: Vec<&Token> = t.iter().filter(|t| !matches!(t, Token::Text(_))).collect();
        assert_eq!(special, [&Token::Param("branch"), &Token::Slot("f")]);
        assert!(tokens("select {unclosed").is_err());
        assert!(tokens("select {Bad Name}").is_err());
    }

    #[test]
    fn split_respects_parentheses_and_quotes() {
        assert_eq!(split_top_level("a = f(x, y), b = 'p,q', c = z"), ["a = f(x, y)", "b = 'p,q'", "c = z"]);
    }

    fn file(text: &str) -> QueryFile {
        QueryFile::parse("t", "t.sql", text).unwrap()
    }

    #[test]
    fn request_values_are_bound_never_pasted() {
        let f = file(
            "-- t\n-- filter w: branch_id in :branch\n-- filter w: month >= :from\n\
             select * from t where {w} and :branch is not null",
        );
        let pairs = vec![("branch".to_string(), "x' or '1'='1,spb".to_string())];
        let params = [crate::query::BRANCH, crate::query::FROM];
        let args = Args::parse("/t", pairs, &params).unwrap();
        let (text, sql) = bind(&BTreeMap::new(), &f, &args).unwrap();
        // The filter on the absent `from` is left out; the list binds each value; a list outside
        // `in` is its first value, bound once.
        assert!(text.ends_with("select * from t where (branch_id in ($1, $2)) and $3 is not null"), "{text}");
        assert_eq!(sql.into_params().len(), 3);
        let (empty, _) = bind(&BTreeMap::new(), &f, &Args::parse("/t", vec![], &params).unwrap()).unwrap();
        assert!(empty.ends_with("where true and $1 is not null"), "{empty}");
        assert!(schema_text(&BTreeMap::new(), &f).unwrap().ends_with("where true and null is not null"));
    }

    #[test]
    fn choices_pick_a_declared_fragment_and_default_to_the_first() {
        let f = file("-- t\n-- choice order: desc = desc, asc = asc\nselect 1 order by x {order}");
        let params = [crate::query::Param::new("order", Kind::Enum(&["desc", "asc"]), "")];
        let asc = Args::parse("/t", vec![("order".into(), "asc".into())], &params).unwrap();
        assert!(bind(&BTreeMap::new(), &f, &asc).unwrap().0.ends_with("order by x asc"));
        let none = Args::parse("/t", vec![], &params).unwrap();
        assert!(bind(&BTreeMap::new(), &f, &none).unwrap().0.ends_with("order by x desc"));
    }

    #[test]
    fn unknown_slots_and_cycles_are_errors() {
        let unknown = file("-- t\nselect {nothing}");
        assert!(schema_text(&BTreeMap::new(), &unknown).unwrap_err().to_string().contains("`{nothing}`"));
        let cycle = file("-- t\nselect * from {query.t}");
        let files = BTreeMap::from([("t".to_string(), cycle.clone())]);
        assert!(schema_text(&files, &cycle).unwrap_err().to_string().contains("nests deeper"));
    }

    #[test]
    fn in_is_a_keyword_not_a_suffix() {
        assert!(after_in("where d.branch_id in "));
        assert!(after_in("x IN"));
        assert!(!after_in("left join"));
        assert!(!after_in("select min"));
    }
}
