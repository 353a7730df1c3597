//! Request parameters of the Bitrix24 simulator, read as PHP reads them: `a[b][]=c` form
//! fields and JSON bodies become one ordered tree (the order of `order[...]` keys matters).

/// A request parameter tree as PHP builds it from `a[b][]=c` or a JSON body, in written order
/// (the order of `order[...]` keys matters).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Str(String),
    List(Vec<Param>),
    Map(Vec<(String, Param)>),
}

impl Param {
    pub(super) fn get(&self, key: &str) -> Option<&Param> {
        match self {
            Param::Map(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Param::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A list's (or numbered map's) values as text.
    pub(super) fn strings(&self) -> Vec<String> {
        match self {
            Param::Str(s) => vec![s.clone()],
            Param::List(l) => l.iter().filter_map(|p| p.as_str().map(str::to_string)).collect(),
            Param::Map(m) => m.iter().filter_map(|(_, p)| p.as_str().map(str::to_string)).collect(),
        }
    }

    pub(super) fn entries(&self) -> &[(String, Param)] {
        match self {
            Param::Map(m) => m,
            _ => &[],
        }
    }

    /// Inserts `value` at `a[b][c]` (segments after the name); an empty segment appends.
    fn insert(&mut self, path: &[&str], value: String) {
        let Some((first, rest)) = path.split_first() else {
            *self = Param::Str(value);
            return;
        };
        if first.is_empty() {
            if let Param::Map(m) = self
                && m.is_empty()
            {
                *self = Param::List(vec![]);
            }
            match self {
                Param::List(l) => {
                    let mut p = Param::Map(vec![]);
                    p.insert(rest, value);
                    l.push(p);
                }
                Param::Map(m) => {
                    let mut p = Param::Map(vec![]);
                    p.insert(rest, value);
                    m.push((m.len().to_string(), p));
                }
                Param::Str(_) => {
                    *self = Param::List(vec![]);
                    self.insert(path, value);
                }
            }
            return;
        }
        if !matches!(self, Param::Map(_)) {
            *self = match std::mem::replace(self, Param::Map(vec![])) {
                Param::List(l) => Param::Map(l.into_iter().enumerate().map(|(i, p)| (i.to_string(), p)).collect()),
                _ => Param::Map(vec![]),
            };
        }
        if let Param::Map(m) = self {
            let pos = match m.iter().position(|(k, _)| k == first) {
                Some(pos) => pos,
                None => {
                    m.push((first.to_string(), Param::Map(vec![])));
                    m.len() - 1
                }
            };
            m[pos].1.insert(rest, value);
        }
    }

    pub(super) fn merge(&mut self, other: Param) {
        if let (Param::Map(a), Param::Map(b)) = (&mut *self, other) {
            for (k, v) in b {
                a.retain(|(key, _)| key != &k);
                a.push((k, v));
            }
        }
    }

    pub(super) fn from_json(v: JsonParam) -> Param {
        v.0
    }
}

/// Parses `a[b][]=c&d=e` into a [`Param`] map.
pub(super) fn parse_form(text: &str) -> Param {
    let mut root = Param::Map(vec![]);
    for (key, value) in url::form_urlencoded::parse(text.as_bytes()) {
        let (name, rest) = match key.find('[') {
            Some(i) => (&key[..i], &key[i..]),
            None => (&key[..], ""),
        };
        let mut path = vec![name];
        let mut rest = rest;
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            path.push(&stripped[..end]);
            rest = &stripped[end + 1..];
        }
        root.insert(&path, value.into_owned());
    }
    root
}

/// A JSON body read into a [`Param`] keeping the order of object keys.
pub(super) struct JsonParam(pub(super) Param);

impl<'de> serde::Deserialize<'de> for JsonParam {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonParam;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(if v { "true" } else { "false" }.into())))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(v.to_string())))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(v.to_string())))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(v.to_string())))
            }
            fn visit_unit<E>(self) -> std::result::Result<JsonParam, E> {
                Ok(JsonParam(Param::Str(String::new())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<JsonParam, A::Error> {
                let mut out = vec![];
                while let Some(JsonParam(p)) = seq.next_element()? {
                    out.push(p);
                }
                Ok(JsonParam(Param::List(out)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<JsonParam, A::Error> {
                let mut out = vec![];
                while let Some((k, JsonParam(v))) = map.next_entry::<String, JsonParam>()? {
                    out.push((k, v));
                }
                Ok(JsonParam(Param::Map(out)))
            }
        }
        d.deserialize_any(V)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_params_keep_order_and_nesting() {
        let p = parse_form(
            "order%5BLAST_UPDATED%5D=ASC&order%5BID%5D=ASC&select%5B%5D=*&select%5B%5D=UF_*&filter%5B%3E%3DDATE_MODIFY%5D=2025-01-01T00%3A00%3A00%2B03%3A00&start=-1",
        );
        let order: Vec<&str> = p.get("order").map(|o| o.entries().iter().map(|(k, _)| k.as_str()).collect()).unwrap();
        assert_eq!(order, ["LAST_UPDATED", "ID"]);
        assert_eq!(p.get("select").unwrap().strings(), ["*", "UF_*"]);
        let f = p.get("filter").unwrap().entries();
        assert_eq!(f[0].0, ">=DATE_MODIFY");
        assert_eq!(f[0].1, Param::Str("2025-01-01T00:00:00+03:00".into()));
        let j: JsonParam = serde_json::from_str(r#"{"order":{"LAST_UPDATED":"ASC","ID":"ASC"},"start":-1}"#).unwrap();
        let order: Vec<&str> = j.0.get("order").map(|o| o.entries().iter().map(|(k, _)| k.as_str()).collect()).unwrap();
        assert_eq!(order, ["LAST_UPDATED", "ID"]);
        assert_eq!(j.0.get("start"), Some(&Param::Str("-1".into())));
    }
}
