//! The JSON documents of the store, byte-for-byte in the shape zarr-python 3 writes them.
//!
//! Key order and spelling follow what `zarr` 3.1 emits for the reference's template (array
//! `zarr.json`: shape, data_type, chunk_grid, chunk_key_encoding, fill_value, codecs,
//! attributes, dimension_names, zarr_format, node_type, storage_transformers), so a
//! reader that diffs metadata, or a person comparing the two stores, sees no difference.
//! `serde_json` is built with `preserve_order`, so a `Map` keeps insertion order.

use serde_json::{Map, Value, json};

use super::{Codec, StoreLayout, StoreTemplate, ZarrType};

/// The zarr DGGS convention declaration, as xdggs' `zarr` decoder looks it up (by uuid,
/// schema url or spec url).
pub(crate) fn dggs_convention() -> Value {
    json!({
        "schema_url": "https://raw.githubusercontent.com/zarr-conventions/dggs/refs/tags/v1/schema.json",
        "spec_url": "https://github.com/zarr-conventions/dggs/blob/v1/README.md",
        "uuid": "7b255807-140c-42ca-97f6-7a1cfecdbc38",
        "name": "dggs",
        "description": "Discrete Global Grid Systems convention for zarr"
    })
}

/// The `dggs` block of the group attributes.
pub(crate) fn dggs_block(child_order: u8) -> Value {
    json!({
        "name": "healpix",
        "refinement_level": child_order,
        "indexing_scheme": "nested",
        "spatial_dimension": "cells",
        "ellipsoid": {
            "name": "WGS84",
            "semimajor_axis": 6378137.0,
            "inverse_flattening": 298.257223563
        },
        "coordinate": "cell_ids",
        "compression": "none"
    })
}

/// The fill value as zarr v3 JSON: integers as integers, non-finite floats as the strings
/// `NaN`, `Infinity`, `-Infinity`.
pub(crate) fn fill_value_json(ty: ZarrType, fill: f64) -> Value {
    if ty.is_float() {
        if fill.is_nan() {
            Value::from("NaN")
        } else if fill == f64::INFINITY {
            Value::from("Infinity")
        } else if fill == f64::NEG_INFINITY {
            Value::from("-Infinity")
        } else {
            Value::from(fill)
        }
    } else if ty.is_signed() {
        Value::from(fill as i64)
    } else {
        Value::from(fill as u64)
    }
}

/// Reads a fill value back from zarr v3 JSON.
pub(crate) fn fill_value_from_json(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// The codec list: always `bytes` little-endian, then the compressor if any.
pub(crate) fn codecs_json(codec: Codec) -> Value {
    let mut codecs = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
    if let Codec::Zstd { level } = codec {
        codecs.push(json!({"name": "zstd", "configuration": {"level": level, "checksum": false}}));
    }
    Value::Array(codecs)
}

/// An array's `zarr.json`.
pub(crate) fn array_json(
    shape: u64,
    chunk_len: u64,
    ty: ZarrType,
    fill: f64,
    codec: Codec,
    attributes: &Map<String, Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("shape".into(), json!([shape]));
    m.insert("data_type".into(), Value::from(ty.name()));
    m.insert(
        "chunk_grid".into(),
        json!({"name": "regular", "configuration": {"chunk_shape": [chunk_len]}}),
    );
    m.insert(
        "chunk_key_encoding".into(),
        json!({"name": "default", "configuration": {"separator": "/"}}),
    );
    m.insert("fill_value".into(), fill_value_json(ty, fill));
    m.insert("codecs".into(), codecs_json(codec));
    m.insert("attributes".into(), Value::Object(attributes.clone()));
    m.insert("dimension_names".into(), json!(["cells"]));
    m.insert("zarr_format".into(), json!(3));
    m.insert("node_type".into(), json!("array"));
    m.insert("storage_transformers".into(), json!([]));
    Value::Object(m)
}

/// A group's `zarr.json`, optionally with inline consolidated metadata.
pub(crate) fn group_json(attributes: Map<String, Value>, consolidated: Option<Map<String, Value>>) -> Value {
    let mut m = Map::new();
    m.insert("attributes".into(), Value::Object(attributes));
    m.insert("zarr_format".into(), json!(3));
    if let Some(members) = consolidated {
        m.insert(
            "consolidated_metadata".into(),
            json!({"kind": "inline", "must_understand": false, "metadata": Value::Object(members)}),
        );
    }
    m.insert("node_type".into(), json!("group"));
    Value::Object(m)
}

/// Group attributes of `<child_order>/`: the DGGS convention, then the template's own
/// attributes, then a `magg` block that lets [`super::ZarrSink::open`] rebuild the
/// template (parent order, layout and variable order are not recoverable from zarr
/// metadata alone).
pub(crate) fn group_attributes(t: &StoreTemplate) -> Map<String, Value> {
    let mut a = Map::new();
    a.insert("zarr_conventions".into(), Value::Array(vec![dggs_convention()]));
    a.insert("dggs".into(), dggs_block(t.child_order));
    for (k, v) in &t.attributes {
        if k != "zarr_conventions" && k != "dggs" && k != "magg" {
            a.insert(k.clone(), v.clone());
        }
    }
    let mut magg = Map::new();
    magg.insert("parent_order".into(), json!(t.parent_order));
    match &t.layout {
        StoreLayout::Compact { parents } => {
            magg.insert("layout".into(), json!("compact"));
            magg.insert("parents".into(), json!(parents));
        }
        StoreLayout::FullSphere => {
            magg.insert("layout".into(), json!("full_sphere"));
        }
    }
    magg.insert(
        "variables".into(),
        Value::Array(t.variables.iter().map(|v| Value::from(v.name.clone())).collect()),
    );
    a.insert("magg".into(), Value::Object(magg));
    a
}

/// Pretty JSON as zarr-python writes it (two-space indent, no trailing newline).
pub(crate) fn to_bytes(v: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail: every map key is a string.
    serde_json::to_vec_pretty(v).unwrap_or_default()
}
