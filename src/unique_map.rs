//! Maps whose keys must be unique in the document (YAML configs, catalog JSON).
//!
//! serde's map visitors keep the last of two equal keys, so a config listing
//! `h_mean:` twice, or a catalog listing a cell twice, would silently lose the first
//! entry. Fields deserialized with [`deserialize`] fail instead, and the format's error
//! adds the line and column of the duplicate.

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use indexmap::IndexMap;
use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};

/// Deserialize a map in document order, failing on a repeated key.
pub(crate) fn deserialize<'de, D, K, V>(deserializer: D) -> Result<IndexMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Eq + Hash + fmt::Debug,
    V: Deserialize<'de>,
{
    struct Unique<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for Unique<K, V>
    where
        K: Deserialize<'de> + Eq + Hash + fmt::Debug,
        V: Deserialize<'de>,
    {
        type Value = IndexMap<K, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map with unique keys")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = IndexMap::with_capacity(map.size_hint().unwrap_or(0).min(4096));
            while let Some(key) = map.next_key::<K>()? {
                if out.contains_key(&key) {
                    return Err(A::Error::custom(format!(
                        "duplicate key {key:?}: each key may appear once (the later entry would silently replace the earlier)"
                    )));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_map(Unique(PhantomData))
}

/// For a YAML error of [`deserialize`] (`duplicate key "k"`), the key and the lines of
/// its first and second occurrence at one indentation: serde_yaml reports the position of
/// the enclosing map, which does not show the user where the repeat is.
pub(crate) fn yaml_duplicate_line(text: &str, error: &str) -> Option<(String, usize, usize)> {
    let key = match error.split("duplicate key \"").nth(1) {
        Some(rest) => rest.split('"').next()?,
        // serde's derive reports a repeated struct field the same way, in its words.
        None => error.split("duplicate field `").nth(1)?.split('`').next()?,
    }
    .to_owned();
    let mut seen: Vec<(usize, usize)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim_start();
        let name = t.split(':').next().unwrap_or("").trim().trim_matches(|c| c == '"' || c == '\'');
        if t.contains(':') && name == key && !t.starts_with('#') {
            if let Some(&(first, _)) = seen.iter().find(|(_, ind)| *ind == indent) {
                return Some((key, first + 1, i + 1));
            }
            seen.push((i, indent));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Doc {
        #[serde(deserialize_with = "super::deserialize")]
        m: IndexMap<String, i32>,
    }

    #[test]
    fn duplicates_fail_with_their_position() {
        let ok: Doc = serde_json::from_str(r#"{"m": {"a": 1, "b": 2}}"#).unwrap();
        assert_eq!(ok.m.keys().collect::<Vec<_>>(), ["a", "b"]);
        let err = serde_json::from_str::<Doc>("{\"m\": {\"a\": 1,\n \"a\": 2}}").unwrap_err().to_string();
        assert!(err.contains("duplicate key \"a\"") && err.contains("line 2"), "{err}");
        // serde_yaml places the error at the map; `yaml_duplicate_line` finds the key.
        let text = "m:\n  a: 1\n  b: 2\n  a: 3\n";
        let err = serde_yaml::from_str::<Doc>(text).unwrap_err().to_string();
        assert!(err.contains("duplicate key \"a\""), "{err}");
        assert_eq!(super::yaml_duplicate_line(text, &err), Some(("a".to_owned(), 2, 4)));
    }
}
