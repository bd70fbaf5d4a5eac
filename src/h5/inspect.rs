//! Text rendering of a granule for `magg inspect`, in the spirit of `h5ls -r -v`: one line
//! per group and dataset (type, shape, max shape, chunk shape, layout and chunk index,
//! filters, fill value), attributes indented below. Kept in the library so it is tested
//! beside the reader and the CLI stays a thin wrapper.

use std::fmt::Write as _;

use arrow::array::Array;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::{AttrValue, DatasetInfo, FillValue, Layout, TreeEntry};

/// Render `entries` (from [`super::H5File::tree`]) as text.
pub fn format_tree(url: &str, entries: &[TreeEntry]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{url}");
    for e in entries {
        match e {
            TreeEntry::Group { path, attributes } => {
                let _ = writeln!(s, "{path:<50} group");
                write_attrs(&mut s, attributes);
            }
            TreeEntry::Dataset(d) => {
                let _ = writeln!(s, "{}", dataset_line(d));
                write_attrs(&mut s, &d.attributes);
            }
        }
    }
    s
}

fn dims(v: &[u64]) -> String {
    let parts: Vec<String> = v.iter().map(|d| if *d == u64::MAX { "inf".to_string() } else { d.to_string() }).collect();
    format!("({})", parts.join(", "))
}

/// One line describing a dataset.
pub fn dataset_line(d: &DatasetInfo) -> String {
    let mut s = format!("{:<50} dataset {} {}", d.path, d.hdf5_type, dims(&d.shape));
    if let Some(m) = &d.max_shape
        && m != &d.shape
    {
        let _ = write!(s, " max {}", dims(m));
    }
    match d.layout {
        Layout::Compact => s.push_str(" compact"),
        Layout::Contiguous => s.push_str(" contiguous"),
        Layout::Chunked { index } => {
            let _ = write!(s, " chunked {} index {index:?}", d.chunk_shape.as_deref().map(dims).unwrap_or_default());
        }
    }
    if !d.filters.is_empty() {
        let _ = write!(s, " filters [{}]", d.filters.join(", "));
    }
    match d.fill_value {
        Some(FillValue::Int(v)) => {
            let _ = write!(s, " fill {v}");
        }
        Some(FillValue::UInt(v)) => {
            let _ = write!(s, " fill {v}");
        }
        Some(FillValue::Float(v)) => {
            let _ = write!(s, " fill {v:e}");
        }
        None => {}
    }
    s
}

fn write_attrs(s: &mut String, attrs: &[(String, AttrValue)]) {
    for (k, v) in attrs {
        let _ = writeln!(s, "    @{k} = {}", attr_text(v));
    }
}

/// An attribute value as text (scalars unbracketed, strings quoted).
pub fn attr_text(v: &AttrValue) -> String {
    fn list<T: ToString>(v: &[T]) -> String {
        if v.len() == 1 {
            v[0].to_string()
        } else {
            format!("[{}]", v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        }
    }
    match v {
        AttrValue::Int(x) => list(x),
        AttrValue::UInt(x) => list(x),
        AttrValue::Float(x) => list(x),
        AttrValue::String(x) => list(&x.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>()),
        AttrValue::Other(d) => format!("<{d}>"),
    }
}

/// Values of `array` one per line, prefixed with their row number starting at `first_row`.
pub fn format_values(array: &dyn Array, first_row: u64) -> String {
    let mut s = String::new();
    let opts = FormatOptions::default();
    match ArrayFormatter::try_new(array, &opts) {
        Ok(f) => {
            for i in 0..array.len() {
                let _ = writeln!(s, "{}\t{}", first_row + i as u64, f.value(i));
            }
        }
        Err(e) => {
            let _ = writeln!(s, "<cannot format values: {e}>");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h5::ChunkIndexKind;
    use arrow::array::Float32Array;
    use arrow::datatypes::DataType;

    fn info() -> DatasetInfo {
        DatasetInfo {
            path: "/gt1l/land_ice_segments/h_li".into(),
            data_type: DataType::Float32,
            hdf5_type: "float32 le".into(),
            shape: vec![25000],
            max_shape: Some(vec![u64::MAX]),
            chunk_shape: Some(vec![10000]),
            layout: Layout::Chunked { index: ChunkIndexKind::BTreeV1 },
            filters: vec!["shuffle".into(), "deflate(6)".into()],
            fill_value: Some(FillValue::Float(f64::from(f32::MAX))),
            attributes: vec![("units".into(), AttrValue::String(vec!["meters".into()]))],
        }
    }

    #[test]
    fn dataset_line_names_everything() {
        let l = dataset_line(&info());
        for want in ["/gt1l/land_ice_segments/h_li", "float32 le", "(25000)", "max (inf)", "chunked (10000)", "BTreeV1", "[shuffle, deflate(6)]", "fill 3.4028234663852886e38"] {
            assert!(l.contains(want), "{want:?} missing from {l:?}");
        }
    }

    #[test]
    fn tree_lists_groups_datasets_and_attributes() {
        let t = format_tree(
            "x.h5",
            &[
                TreeEntry::Group { path: "/".into(), attributes: vec![("version".into(), AttrValue::Int(vec![6]))] },
                TreeEntry::Dataset(info()),
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "x.h5");
        assert!(lines[1].starts_with("/ ") && lines[1].ends_with("group"), "{t}");
        assert_eq!(lines[2], "    @version = 6");
        assert!(lines[3].starts_with("/gt1l/land_ice_segments/h_li"), "{t}");
        assert_eq!(lines[4], "    @units = \"meters\"");
    }

    #[test]
    fn values_are_numbered_from_the_first_row() {
        let a = Float32Array::from(vec![1.5, -2.0]);
        assert_eq!(format_values(&a, 10), "10\t1.5\n11\t-2.0\n");
    }
}
