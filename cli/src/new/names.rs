//! What a project or handler may be called.

/// Rust's keywords, strict and reserved, in every edition: none of them can name a crate
/// or a function.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Crate names that would clash with what every forge project depends on or with Rust's
/// own crates.
const TAKEN: &[&str] = &[
    "forge",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "serde",
    "sqlx",
    "tokio",
];

/// A project name: a valid crate name (ASCII letters, digits, `-`, `_`, starting with a
/// letter), at most 64 characters, neither a keyword nor a crate every project uses.
pub fn check_project(name: &str) -> Result<(), String> {
    let ident = name.replace('-', "_");
    if name.is_empty() {
        return Err("the project name is empty".into());
    }
    if name.len() > 64 {
        return Err(format!("`{name}` is longer than 64 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!("`{name}` must start with a letter"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "`{name}` contains `{bad}`; use letters, digits, `-` and `_`"
        ));
    }
    if KEYWORDS.contains(&ident.as_str()) {
        return Err(format!("`{name}` is a Rust keyword"));
    }
    if TAKEN.contains(&ident.as_str()) {
        return Err(format!(
            "`{name}` is the name of a crate every forge project depends on"
        ));
    }
    Ok(())
}

/// A handler name: a snake_case Rust identifier that is not a keyword.
pub fn check_handler(name: &str) -> Result<(), String> {
    let snake = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !snake {
        return Err(format!(
            "`{name}` is not a snake_case name such as `list_posts`"
        ));
    }
    if KEYWORDS.contains(&name) {
        return Err(format!("`{name}` is a Rust keyword"));
    }
    Ok(())
}

/// `blog_post` or `BlogPost` → `BlogPost`.
pub fn pascal_case(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// `BlogPost` or `blog_post` → `blog_post`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        for good in ["app", "my-app", "my_app2", "Todo"] {
            assert_eq!(check_project(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("2app", "start with a letter"),
            ("my app", "contains ` `"),
            ("fn", "keyword"),
            ("self", "keyword"),
            ("forge", "depends on"),
            ("proc-macro", "depends on"),
        ] {
            let error = check_project(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn handler_names_and_cases() {
        assert_eq!(check_handler("list_posts"), Ok(()));
        assert!(check_handler("ListPosts").is_err());
        assert!(check_handler("match").is_err());
        assert_eq!(pascal_case("blog_post"), "BlogPost");
        assert_eq!(pascal_case("BlogPost"), "BlogPost");
        assert_eq!(snake_case("BlogPost"), "blog_post");
        assert_eq!(snake_case("blog_post"), "blog_post");
    }
}
