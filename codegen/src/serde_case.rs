//! serde's `rename_all` case conversions, reproduced exactly.
//!
//! The rules follow serde_derive's `internals/case.rs`, including its quirks: fields are
//! assumed to be `snake_case` and variants `PascalCase`, so only the expected word
//! boundaries are found (`HTTPServer` becomes `h_t_t_p_server`, `Foo2Bar` becomes
//! `foo2_bar`, a field `field_2d` in PascalCase becomes `Field2d`, `lowercase` leaves a
//! field exactly as written), and only ASCII letters change case. Where serde_derive would panic at compile time (a camelCase name starting
//! with a multi-byte character, or a field made only of underscores) the user's crate does
//! not build, so any answer is acceptable; these functions return one instead of panicking.

/// A `#[serde(rename_all = "…")]` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

const RULES: [(&str, RenameRule); 8] = [
    ("lowercase", RenameRule::Lower),
    ("UPPERCASE", RenameRule::Upper),
    ("PascalCase", RenameRule::Pascal),
    ("camelCase", RenameRule::Camel),
    ("snake_case", RenameRule::Snake),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
    ("kebab-case", RenameRule::Kebab),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
];

impl RenameRule {
    /// The names serde accepts, in serde's order.
    pub const SERDE_NAMES: [&'static str; 8] = [
        RULES[0].0, RULES[1].0, RULES[2].0, RULES[3].0, RULES[4].0, RULES[5].0, RULES[6].0,
        RULES[7].0,
    ];

    /// The rule serde means by `name`; matching is exact, as in serde.
    pub fn from_serde(name: &str) -> Option<RenameRule> {
        RULES
            .iter()
            .find(|(serde_name, _)| *serde_name == name)
            .map(|&(_, rule)| rule)
    }

    /// The name serde gives a struct field (or a struct variant's field) under this rule.
    /// A raw identifier's `r#` is dropped first, as serde does.
    pub fn apply_to_field(self, rust_field_name: &str) -> String {
        let field = unraw(rust_field_name);
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Pascal => pascal_from_snake(field),
            RenameRule::Camel => lower_first(&pascal_from_snake(field)),
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
        }
    }

    /// The name serde gives an enum variant under this rule.
    /// A raw identifier's `r#` is dropped first, as serde does.
    pub fn apply_to_variant(self, rust_variant_name: &str) -> String {
        let variant = unraw(rust_variant_name);
        match self {
            RenameRule::Pascal => variant.to_owned(),
            RenameRule::Lower => variant.to_ascii_lowercase(),
            RenameRule::Upper => variant.to_ascii_uppercase(),
            RenameRule::Camel => lower_first(variant),
            RenameRule::Snake => snake_from_pascal(variant),
            RenameRule::ScreamingSnake => snake_from_pascal(variant).to_ascii_uppercase(),
            RenameRule::Kebab => snake_from_pascal(variant).replace('_', "-"),
            RenameRule::ScreamingKebab => snake_from_pascal(variant)
                .to_ascii_uppercase()
                .replace('_', "-"),
        }
    }
}

fn unraw(name: &str) -> &str {
    name.strip_prefix("r#").unwrap_or(name)
}

/// Drops every `_` and upper-cases the character after it and the first one.
fn pascal_from_snake(field: &str) -> String {
    let mut pascal = String::with_capacity(field.len());
    let mut capitalize = true;
    for ch in field.chars() {
        if ch == '_' {
            capitalize = true;
        } else if capitalize {
            pascal.push(ch.to_ascii_uppercase());
            capitalize = false;
        } else {
            pascal.push(ch);
        }
    }
    pascal
}

/// An `_` before every upper-case character but the first, then ASCII lower case. serde
/// tests `char::is_uppercase`, which is Unicode-aware, but lowers only ASCII: `ÉtéÀ` gives
/// `Été_À`.
fn snake_from_pascal(variant: &str) -> String {
    let mut snake = String::with_capacity(variant.len() + 4);
    for (i, ch) in variant.char_indices() {
        if i > 0 && ch.is_uppercase() {
            snake.push('_');
        }
        snake.push(ch.to_ascii_lowercase());
    }
    snake
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::RenameRule::{self, *};
    use serde::Serialize;

    const ALL: [RenameRule; 8] = [
        Lower,
        Upper,
        Pascal,
        Camel,
        Snake,
        ScreamingSnake,
        Kebab,
        ScreamingKebab,
    ];

    #[test]
    fn serde_names_round_trip() {
        for (name, rule) in RenameRule::SERDE_NAMES.iter().zip(ALL) {
            assert_eq!(RenameRule::from_serde(name), Some(rule), "{name}");
        }
    }

    #[test]
    fn unknown_names_are_rejected() {
        for name in [
            "",
            "camelcase",
            "Camelcase",
            "snake-case",
            "SCREAMING_KEBAB_CASE",
            "lower",
        ] {
            assert_eq!(RenameRule::from_serde(name), None, "{name}");
        }
    }

    /// Each row: the Rust name, then the result of every rule in `ALL` order.
    type Row = (&'static str, [&'static str; 8]);

    fn check(rows: &[Row], apply: fn(RenameRule, &str) -> String) {
        for (original, expected) in rows {
            for (rule, want) in ALL.iter().zip(expected) {
                assert_eq!(apply(*rule, original), *want, "{rule:?} on {original}");
            }
        }
    }

    #[test]
    fn variants() {
        #[rustfmt::skip]
        let rows: &[Row] = &[
            ("VeryTasty", ["verytasty", "VERYTASTY", "VeryTasty", "veryTasty", "very_tasty", "VERY_TASTY", "very-tasty", "VERY-TASTY"]),
            ("HTTPServer", ["httpserver", "HTTPSERVER", "HTTPServer", "hTTPServer", "h_t_t_p_server", "H_T_T_P_SERVER", "h-t-t-p-server", "H-T-T-P-SERVER"]),
            ("Foo2Bar", ["foo2bar", "FOO2BAR", "Foo2Bar", "foo2Bar", "foo2_bar", "FOO2_BAR", "foo2-bar", "FOO2-BAR"]),
            ("A", ["a", "A", "A", "a", "a", "A", "a", "A"]),
            ("Z42", ["z42", "Z42", "Z42", "z42", "z42", "Z42", "z42", "Z42"]),
            ("already_snake", ["already_snake", "ALREADY_SNAKE", "already_snake", "already_snake", "already_snake", "ALREADY_SNAKE", "already-snake", "ALREADY-SNAKE"]),
            ("Mixed_Case", ["mixed_case", "MIXED_CASE", "Mixed_Case", "mixed_Case", "mixed__case", "MIXED__CASE", "mixed--case", "MIXED--CASE"]),
            ("r#Type", ["type", "TYPE", "Type", "type", "type", "TYPE", "type", "TYPE"]),
            ("ÉtéÀ", ["ÉtéÀ", "ÉTéÀ", "ÉtéÀ", "ÉtéÀ", "Été_À", "ÉTé_À", "Été-À", "ÉTé-À"]),
        ];
        check(rows, RenameRule::apply_to_variant);
    }

    #[test]
    fn fields() {
        #[rustfmt::skip]
        let rows: &[Row] = &[
            ("very_tasty", ["very_tasty", "VERY_TASTY", "VeryTasty", "veryTasty", "very_tasty", "VERY_TASTY", "very-tasty", "VERY-TASTY"]),
            ("a_b_c", ["a_b_c", "A_B_C", "ABC", "aBC", "a_b_c", "A_B_C", "a-b-c", "A-B-C"]),
            ("field_2d", ["field_2d", "FIELD_2D", "Field2d", "field2d", "field_2d", "FIELD_2D", "field-2d", "FIELD-2D"]),
            ("already_snake", ["already_snake", "ALREADY_SNAKE", "AlreadySnake", "alreadySnake", "already_snake", "ALREADY_SNAKE", "already-snake", "ALREADY-SNAKE"]),
            ("a", ["a", "A", "A", "a", "a", "A", "a", "A"]),
            ("x", ["x", "X", "X", "x", "x", "X", "x", "X"]),
            ("z42", ["z42", "Z42", "Z42", "z42", "z42", "Z42", "z42", "Z42"]),
            ("_private", ["_private", "_PRIVATE", "Private", "private", "_private", "_PRIVATE", "-private", "-PRIVATE"]),
            ("double__gap_", ["double__gap_", "DOUBLE__GAP_", "DoubleGap", "doubleGap", "double__gap_", "DOUBLE__GAP_", "double--gap-", "DOUBLE--GAP-"]),
            ("HTTPServer", ["HTTPServer", "HTTPSERVER", "HTTPServer", "hTTPServer", "HTTPServer", "HTTPSERVER", "HTTPServer", "HTTPSERVER"]),
            ("r#type", ["type", "TYPE", "Type", "type", "type", "TYPE", "type", "TYPE"]),
            ("été_à", ["été_à", "éTé_à", "étéà", "étéà", "été_à", "éTé_à", "été-à", "éTé-à"]),
        ];
        check(rows, RenameRule::apply_to_field);
    }

    #[test]
    fn names_serde_rejects_do_not_panic() {
        for rule in ALL {
            assert_eq!(rule.apply_to_variant(""), "");
            assert_eq!(rule.apply_to_field(""), "");
        }
        assert_eq!(Camel.apply_to_field("__"), "");
    }

    /// Serialises `value` and returns its JSON object keys (or, for a unit variant, the
    /// string) in declaration order.
    fn wire_names(value: impl Serialize) -> Vec<String> {
        match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            Ok(serde_json::Value::String(name)) => vec![name],
            other => panic!("unexpected serialisation {other:?}"),
        }
    }

    const FIELDS: [&str; 10] = [
        "very_tasty",
        "a_b_c",
        "field_2d",
        "already_snake",
        "x",
        "z42",
        "_private",
        "double__gap_",
        "HTTPServer",
        "r#type",
    ];

    const VARIANTS: [&str; 8] = [
        "VeryTasty",
        "HTTPServer",
        "Foo2Bar",
        "A",
        "Z42",
        "already_snake",
        "Mixed_Case",
        "r#Type",
    ];

    /// For one rule: a struct with every name in `FIELDS` and an enum with every name in
    /// `VARIANTS`, both under `rename_all = $serde`, checked against our functions.
    macro_rules! against_serde {
        ($test:ident, $rule:expr, $serde:literal) => {
            #[test]
            #[allow(non_camel_case_types, non_snake_case, clippy::upper_case_acronyms)]
            fn $test() {
                #[derive(Serialize, Default)]
                #[serde(rename_all = $serde)]
                struct Fields {
                    very_tasty: u8,
                    a_b_c: u8,
                    field_2d: u8,
                    already_snake: u8,
                    x: u8,
                    z42: u8,
                    _private: u8,
                    double__gap_: u8,
                    HTTPServer: u8,
                    r#type: u8,
                }

                #[derive(Serialize)]
                #[serde(rename_all = $serde)]
                enum Variants {
                    VeryTasty,
                    HTTPServer,
                    Foo2Bar,
                    A,
                    Z42,
                    already_snake,
                    Mixed_Case,
                    r#Type,
                }

                // serde_json may sort object keys, so compare as sorted lists.
                let mut theirs = wire_names(Fields::default());
                theirs.sort();
                let mut ours: Vec<String> =
                    FIELDS.iter().map(|f| $rule.apply_to_field(f)).collect();
                ours.sort();
                assert_eq!(theirs, ours, "fields");

                let theirs: Vec<String> = [
                    Variants::VeryTasty,
                    Variants::HTTPServer,
                    Variants::Foo2Bar,
                    Variants::A,
                    Variants::Z42,
                    Variants::already_snake,
                    Variants::Mixed_Case,
                    Variants::r#Type,
                ]
                .into_iter()
                .flat_map(wire_names)
                .collect();
                let ours: Vec<String> =
                    VARIANTS.iter().map(|v| $rule.apply_to_variant(v)).collect();
                assert_eq!(theirs, ours, "variants");
                assert_eq!(RenameRule::from_serde($serde), Some($rule));
            }
        };
    }

    against_serde!(serde_lowercase, Lower, "lowercase");
    against_serde!(serde_uppercase, Upper, "UPPERCASE");
    against_serde!(serde_pascal_case, Pascal, "PascalCase");
    against_serde!(serde_camel_case, Camel, "camelCase");
    against_serde!(serde_snake_case, Snake, "snake_case");
    against_serde!(
        serde_screaming_snake_case,
        ScreamingSnake,
        "SCREAMING_SNAKE_CASE"
    );
    against_serde!(serde_kebab_case, Kebab, "kebab-case");
    against_serde!(
        serde_screaming_kebab_case,
        ScreamingKebab,
        "SCREAMING-KEBAB-CASE"
    );
}
