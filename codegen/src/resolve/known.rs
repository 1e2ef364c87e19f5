//! Types from outside the user's crate whose wire form forge knows: primitives, std
//! collections and smart pointers, and the usual date, id, decimal and JSON types.

use crate::ir::Scalar;

/// What a well-known external type is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Scalar(Scalar),
    Option,
    List,
    Map,
    /// `Box<T>`, `Arc<T>`, `Rc<T>`, `Cow<T>`, `sqlx::types::Json<T>`: `T` on the wire.
    Transparent,
    /// `Result<T, E>` (only meaningful as a handler's return type).
    Result,
    /// Cannot cross the wire faithfully; the reason is shown to the user.
    Refused(&'static str),
}

/// Crates whose exports forge recognises by name.
const CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "forge",
    "chrono",
    "time",
    "uuid",
    "serde_json",
    "rust_decimal",
    "bigdecimal",
    "sqlx",
    "url",
    "indexmap",
];

/// Names usable without a path: Rust's prelude, primitives and forge's prelude.
const PRELUDE: &[&str] = &[
    "bool",
    "char",
    "str",
    "String",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "f32",
    "f64",
    "Option",
    "Vec",
    "Box",
    "Result",
    "Uuid",
    "DateTime",
    "NaiveDate",
];

const WIDE_INTEGER: &str =
    "its values do not fit a JSON number that JavaScript reads exactly (2^53)";

pub fn is_known(path: &[String]) -> bool {
    classify(path).is_some()
}

pub fn classify(path: &[String]) -> Option<Known> {
    let (name, prefix) = path.split_last()?;
    let recognised = match prefix.first() {
        None => PRELUDE.contains(&name.as_str()),
        Some(krate) => CRATES.contains(&krate.as_str()),
    };
    if !recognised {
        return None;
    }
    let krate = prefix.first().map(String::as_str).unwrap_or("");
    Some(match name.as_str() {
        "bool" => Known::Scalar(Scalar::Bool),
        "char" => Known::Scalar(Scalar::Char),
        "str" | "String" => Known::Scalar(Scalar::String),
        "i8" => Known::Scalar(Scalar::I8),
        "i16" => Known::Scalar(Scalar::I16),
        "i32" => Known::Scalar(Scalar::I32),
        "i64" => Known::Scalar(Scalar::I64),
        "u8" => Known::Scalar(Scalar::U8),
        "u16" => Known::Scalar(Scalar::U16),
        "u32" => Known::Scalar(Scalar::U32),
        "f32" => Known::Scalar(Scalar::F32),
        "f64" => Known::Scalar(Scalar::F64),
        "u64" | "u128" | "i128" | "usize" | "isize" => Known::Refused(WIDE_INTEGER),
        "Option" => Known::Option,
        "Vec" | "VecDeque" | "LinkedList" | "HashSet" | "BTreeSet" | "BinaryHeap" | "IndexSet" => {
            Known::List
        }
        "HashMap" | "BTreeMap" | "IndexMap" => Known::Map,
        "Box" | "Arc" | "Rc" | "Cow" => Known::Transparent,
        "Json" if krate == "sqlx" || krate == "forge" => Known::Transparent,
        "Result" => Known::Result,
        "Uuid" => Known::Scalar(Scalar::Uuid),
        "DateTime" | "OffsetDateTime" => Known::Scalar(Scalar::DateTime),
        "NaiveDateTime" | "PrimitiveDateTime" => Known::Scalar(Scalar::NaiveDateTime),
        "NaiveDate" | "Date" => Known::Scalar(Scalar::Date),
        "NaiveTime" | "Time" => Known::Scalar(Scalar::Time),
        "Decimal" | "BigDecimal" => Known::Scalar(Scalar::Decimal),
        "Value" if krate == "serde_json" || krate == "forge" => Known::Scalar(Scalar::Json),
        "Map" if krate == "serde_json" => Known::Scalar(Scalar::JsonObject),
        "Duration" if krate == "std" || krate == "core" => Known::Scalar(Scalar::Duration),
        "IpAddr" | "Ipv4Addr" | "Ipv6Addr" | "SocketAddr" | "Url" | "PathBuf" => {
            Known::Scalar(Scalar::OtherString)
        }
        _ => return None,
    })
}
