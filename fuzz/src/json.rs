//! JSON values for request bodies and configs: objects whose keys come from the names a
//! parser looks for (so that it gets past "unknown key"), whose values are plausible ones
//! for that key or anything at all (wrong types, huge numbers, odd strings).

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};

/// Strings that break naive parsing: empty, separators, paths, NUL, long, numbers as text.
pub fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "", " ", "a", "0", "-1", "1.5", "true", "null", "=", ":", "::", "a=b", "a:b:c", "/", "/tmp",
            "..", "../..", "/proc/self", "\u{0}", "a\u{0}b", "\n", "\u{fc}\u{e9}", "*", "%s", "${X}",
            "9223372036854775808", "1e400", "-9223372036854775809", "0x10", "1k", "1g", "100m",
            "65536", "4294967296", "ALL", "all", "CAP_SYS_ADMIN", "SYS_ADMIN", "none", "host",
            "on-failure", "always", "nobody", "root", "0:0", "1000:1000",
        ])
        .prop_map(String::from),
        2 => "[ -~]{0,12}".prop_map(|s: String| s),
        1 => (1usize..4).prop_map(|n| "x".repeat(1000 * n)),
    ]
}

/// Numbers at the edges of the types a parser may convert to.
pub fn tricky_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => select(vec![0i64, 1, -1, 2, 1024, 1 << 20, i64::from(i32::MAX), i64::from(i32::MIN), i64::MAX, i64::MIN, 4_294_967_296])
            .prop_map(Value::from),
        1 => select(vec![u64::MAX, 1 << 63]).prop_map(Value::from),
        1 => select(vec![0.5f64, -0.0, 1e308, -1e308, 1e-300]).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
    ]
}

pub fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => tricky_number(),
        3 => tricky_string().prop_map(Value::String),
    ]
}

/// Any JSON value, nested a little.
pub fn any_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(tricky_string(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A list of strings (a plausible value for most list keys), sometimes with a non-string.
pub fn string_list(item: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => vec(item.prop_map(Value::String), 0..4).prop_map(Value::Array),
        1 => vec(scalar(), 0..3).prop_map(Value::Array),
    ]
}

/// An object with keys of `fields` (each with its value strategy), maybe an unknown key
/// too; each present key's value is its plausible one or, now and then, anything.
pub fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    object_with(fields, 0.35)
}

/// [`object`] where each key is present with probability `presence`.
pub fn object_with(
    fields: Vec<(&'static str, BoxedStrategy<Value>)>,
    presence: f64,
) -> BoxedStrategy<Value> {
    let n = fields.len();
    let per_field: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .into_iter()
        .map(|(key, plausible)| {
            let value = prop_oneof![6 => plausible, 1 => any_value()];
            proptest::option::weighted(presence, value.prop_map(move |v| (key.to_string(), v)))
                .boxed()
        })
        .collect();
    let extra = proptest::option::weighted(0.05, (tricky_string(), any_value()));
    (per_field, extra)
        .prop_map(move |(present, extra)| {
            let mut map = Map::with_capacity(n + 1);
            for (k, v) in present.into_iter().flatten() {
                map.insert(k, v);
            }
            if let Some((k, v)) = extra {
                map.insert(k, v);
            }
            Value::Object(map)
        })
        .boxed()
}

/// The keys of two objects together (`b`'s win).
pub fn merge(a: BoxedStrategy<Value>, b: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    (a, b)
        .prop_map(|(mut a, b)| {
            if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
                a.extend(b);
            }
            a
        })
        .boxed()
}
