//! Splitting a migration file into the statements the runner sends one by one.
//!
//! The lexer follows Postgres' own (`scan.l`) closely enough that a `;` ends a statement
//! exactly where Postgres would end it: not inside `--` or nested `/* */` comments, `'…'`,
//! `E'…'` or `U&'…'` strings, `"quoted identifiers"` or `$tag$…$tag$` bodies.
//!
//! Decisions worth knowing:
//!
//! - Comments and whitespace *before* a statement's first token are not part of it: they
//!   separate statements, and an error Postgres reports for a statement is easier to read
//!   without the file's commentary in front. A statement's `offset`, `line` and `column` point
//!   at its first token. Comments after that token, up to the `;`, stay in the text (Postgres
//!   ignores them, and they may explain the statement).
//! - A statement with no token (`;;`, or only comments) is dropped.
//! - `\n`, `\r\n` and a lone `\r` each end a line; columns count characters, not bytes. A
//!   UTF-8 byte order mark at the very start (Windows editors write one) is skipped and takes
//!   no column.
//! - Dollar-quote tags accept the bytes Postgres accepts: ASCII letters, `_` and non-ASCII
//!   characters first, digits too after that. `$1` is therefore a parameter, never a tag.
//! - Scanning is one forward pass: nesting is a counter, line and column are advanced
//!   incrementally, and searching for a closing `$tag$` is a linear substring search, so
//!   every input is split in linear time without recursion.

use std::ops::Range;

/// One statement of a migration file, with where it starts in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement from its first token to its end, without the trailing `;` and without
    /// surrounding whitespace; comments after the first token are kept.
    pub text: &'a str,
    /// Byte offset of `text` in the file.
    pub offset: usize,
    /// 1-based line of the statement's first token.
    pub line: u32,
    /// 1-based column of the statement's first token, in characters.
    pub column: u32,
}

/// A construct that was opened and never closed, reported at the position it was opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line}, column {column}")]
pub struct SplitError {
    /// What is unterminated, such as `unterminated dollar-quoted string $body$`.
    pub message: String,
    /// 1-based line where the construct was opened.
    pub line: u32,
    /// 1-based column, in characters, where the construct was opened.
    pub column: u32,
}

/// Splits a migration file into its statements, in file order.
///
/// Fails only when a string, quoted identifier, dollar-quoted body or block comment is still
/// open at the end of the file; the error points at where it was opened, since that is where
/// the missing delimiter was meant to pair up.
pub fn split(sql: &str) -> Result<Vec<Statement<'_>>, SplitError> {
    let mut positions = Positions::new(sql);
    let mut statements = Vec::new();
    // From the current statement's first token to the end of its last token or comment.
    let mut open: Option<Range<usize>> = None;
    let mut i = bom_len(sql);
    while i < sql.len() {
        let (item, end) = next_item(sql, i).map_err(|u| positions.error(u))?;
        match item {
            Item::Semicolon => statements.extend(open.take().map(|s| positions.statement(s))),
            Item::Token => open.get_or_insert(i..end).end = end,
            Item::LineComment | Item::BlockComment => {
                if let Some(span) = &mut open {
                    span.end = end;
                }
            }
            Item::Space => {}
        }
        i = end;
    }
    statements.extend(open.map(|s| positions.statement(s)));
    Ok(statements)
}

/// Whether the file's leading comment block (the `--` lines and blank lines before the first
/// statement, and `/* */` blocks there) contains the directive `-- forge:no-transaction`.
///
/// Only a `--` line counts, and the space after `--` is optional (`--forge:no-transaction`
/// counts too); text may follow the directive after whitespace, to say why. A directive
/// inside a `/* */` block does not count, so that wrapping it in one disables it, and a
/// directive after the first statement does not count, since the runner must decide before it
/// sends anything.
pub fn no_transaction(sql: &str) -> bool {
    let mut i = bom_len(sql);
    while i < sql.len() {
        match next_item(sql, i) {
            Ok((Item::Space | Item::BlockComment, end)) => i = end,
            Ok((Item::LineComment, end)) if is_directive(&sql[i + 2..end]) => return true,
            Ok((Item::LineComment, end)) => i = end,
            _ => return false,
        }
    }
    false
}

const NO_TRANSACTION: &str = "forge:no-transaction";

fn is_directive(comment: &str) -> bool {
    comment
        .trim_start_matches(is_space_char)
        .strip_prefix(NO_TRANSACTION)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_whitespace()))
}

fn bom_len(sql: &str) -> usize {
    if sql.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    }
}

/// What the lexer found at a position.
enum Item {
    Space,
    Semicolon,
    LineComment,
    BlockComment,
    /// Anything Postgres would parse: a word, number, string, identifier, operator character…
    Token,
}

/// A construct opened at byte `start` and not closed before the end of the file.
struct Unterminated {
    what: String,
    start: usize,
}

impl Unterminated {
    fn at(start: usize, what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            start,
        }
    }
}

/// The item starting at byte `i` (`i < sql.len()`, on a character boundary) and where it
/// ends. Every item ends on a character boundary: all delimiters are ASCII, and words take
/// every non-ASCII byte.
fn next_item(sql: &str, i: usize) -> Result<(Item, usize), Unterminated> {
    let b = sql.as_bytes();
    Ok(match (b[i], b.get(i + 1)) {
        (c, _) if is_space(c) => (Item::Space, i + 1),
        (b';', _) => (Item::Semicolon, i + 1),
        (b'-', Some(b'-')) => (Item::LineComment, line_comment_end(b, i)),
        (b'/', Some(b'*')) => (Item::BlockComment, block_comment_end(b, i)?),
        _ => (Item::Token, token_end(sql, i)?),
    })
}

fn token_end(sql: &str, i: usize) -> Result<usize, Unterminated> {
    let b = sql.as_bytes();
    match (b[i], b.get(i + 1), b.get(i + 2)) {
        (b'\'', ..) => quoted_end(b, i, i, Quote::STRING),
        (b'"', ..) => quoted_end(b, i, i, Quote::IDENTIFIER),
        (b'E' | b'e', Some(b'\''), _) => quoted_end(b, i, i + 1, Quote::ESCAPE_STRING),
        (b'U' | b'u', Some(b'&'), Some(b'\'')) => quoted_end(b, i, i + 2, Quote::UNICODE_STRING),
        (b'U' | b'u', Some(b'&'), Some(b'"')) => quoted_end(b, i, i + 2, Quote::UNICODE_IDENT),
        (b'$', Some(c), _) if c.is_ascii_digit() => Ok(number_end(b, i + 1)),
        (b'$', ..) => dollar_end(sql, i),
        (c, ..) if c.is_ascii_digit() => Ok(number_end(b, i)),
        (c, ..) if is_ident_start(c) => Ok(word_end(b, i)),
        _ => Ok(i + 1),
    }
}

/// How one kind of quoted token is delimited.
struct Quote {
    quote: u8,
    /// `E'…'`: a backslash takes the next byte literally, quote included.
    backslash_escapes: bool,
    name: &'static str,
}

impl Quote {
    const STRING: Self = Self::new(b'\'', false, "string literal");
    const ESCAPE_STRING: Self = Self::new(b'\'', true, "escape string literal");
    const UNICODE_STRING: Self = Self::new(b'\'', false, "Unicode string literal");
    const IDENTIFIER: Self = Self::new(b'"', false, "quoted identifier");
    const UNICODE_IDENT: Self = Self::new(b'"', false, "Unicode quoted identifier");

    const fn new(quote: u8, backslash_escapes: bool, name: &'static str) -> Self {
        Self {
            quote,
            backslash_escapes,
            name,
        }
    }
}

/// End of a quoted token that starts at `start` and whose opening quote is at `open`; a
/// doubled quote stands for one quote.
fn quoted_end(b: &[u8], start: usize, open: usize, q: Quote) -> Result<usize, Unterminated> {
    let mut k = open + 1;
    while k < b.len() {
        match b[k] {
            c if c == q.quote && b.get(k + 1) == Some(&q.quote) => k += 2,
            c if c == q.quote => return Ok(k + 1),
            b'\\' if q.backslash_escapes => k += 2,
            _ => k += 1,
        }
    }
    Err(Unterminated::at(start, format!("unterminated {}", q.name)))
}

/// A line comment runs to the line break, which it leaves to the whitespace after it.
fn line_comment_end(b: &[u8], start: usize) -> usize {
    b[start..]
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map_or(b.len(), |p| start + p)
}

/// Postgres nests block comments; a counter rather than recursion keeps arbitrarily deep
/// nesting cheap and stack-safe.
fn block_comment_end(b: &[u8], start: usize) -> Result<usize, Unterminated> {
    let mut depth = 0usize;
    let mut k = start;
    while k + 1 < b.len() {
        match (b[k], b[k + 1]) {
            (b'/', b'*') => {
                depth += 1;
                k += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                k += 2;
                if depth == 0 {
                    return Ok(k);
                }
            }
            _ => k += 1,
        }
    }
    Err(Unterminated::at(start, "unterminated block comment"))
}

/// At a `$` that is not a parameter: either a dollar-quoted body, which only its own
/// `$tag$` closes (other tags and `$$` inside are text), or a lone `$` character.
fn dollar_end(sql: &str, start: usize) -> Result<usize, Unterminated> {
    let Some(open_end) = dollar_tag_end(sql.as_bytes(), start) else {
        return Ok(start + 1);
    };
    let tag = &sql[start..open_end];
    // `str::find` is a linear-time substring search, so a long tag over a body full of `$`
    // cannot make this quadratic.
    match sql[open_end..].find(tag) {
        Some(p) => Ok(open_end + p + tag.len()),
        None => Err(Unterminated::at(
            start,
            format!("unterminated dollar-quoted string {tag}"),
        )),
    }
}

/// End of the `$tag$` (or `$$`) delimiter starting at `start`, if one starts there.
fn dollar_tag_end(b: &[u8], start: usize) -> Option<usize> {
    let mut k = start + 1;
    if b.get(k).is_some_and(|&c| is_ident_start(c)) {
        k += 1;
        while b
            .get(k)
            .is_some_and(|&c| is_ident_start(c) || c.is_ascii_digit())
        {
            k += 1;
        }
    }
    (b.get(k) == Some(&b'$')).then_some(k + 1)
}

/// Identifiers may contain `$` after their first character (`a$b`), so a `$` inside one never
/// opens a dollar quote.
fn word_end(b: &[u8], start: usize) -> usize {
    run_end(b, start + 1, |c| {
        is_ident_start(c) || c.is_ascii_digit() || c == b'$'
    })
}

/// A number (or a `$1` parameter's digits) takes letters for exponents and suffixes but not
/// `$` or quotes: `1$$x$$` is a number followed by a dollar-quoted body, as in Postgres.
fn number_end(b: &[u8], start: usize) -> usize {
    run_end(b, start, |c| is_ident_start(c) || c.is_ascii_digit())
}

fn run_end(b: &[u8], start: usize, include: impl Fn(u8) -> bool) -> usize {
    b[start..]
        .iter()
        .position(|&c| !include(c))
        .map_or(b.len(), |p| start + p)
}

/// Postgres' identifier start: ASCII letters, `_`, and every byte of a non-ASCII character.
fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

/// Postgres' whitespace, which unlike `u8::is_ascii_whitespace` includes vertical tab.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn is_space_char(c: char) -> bool {
    u8::try_from(c).is_ok_and(is_space)
}

/// Line and column of byte offsets asked for in increasing order, advanced from the previous
/// answer so that the whole file is walked once however many statements it has.
struct Positions<'a> {
    sql: &'a str,
    offset: usize,
    line: u32,
    column: u32,
    /// The last byte was a `\r`, so a `\n` now completes a CRLF instead of starting a line.
    after_cr: bool,
}

impl<'a> Positions<'a> {
    fn new(sql: &'a str) -> Self {
        let offset = bom_len(sql);
        Self {
            sql,
            offset,
            line: 1,
            column: 1,
            after_cr: false,
        }
    }

    fn statement(&mut self, span: Range<usize>) -> Statement<'a> {
        let (line, column) = self.advance_to(span.start);
        // Only a line comment can end in whitespace; the text is trimmed of that too.
        let text = self.sql[span.clone()].trim_end_matches(is_space_char);
        Statement {
            text,
            offset: span.start,
            line,
            column,
        }
    }

    fn error(&mut self, unterminated: Unterminated) -> SplitError {
        let (line, column) = self.advance_to(unterminated.start);
        SplitError {
            message: unterminated.what,
            line,
            column,
        }
    }

    fn advance_to(&mut self, offset: usize) -> (u32, u32) {
        let bytes = self
            .sql
            .as_bytes()
            .get(self.offset..offset)
            .unwrap_or_default();
        for &c in bytes {
            self.step(c);
        }
        self.offset = self.offset.max(offset);
        (self.line, self.column)
    }

    fn step(&mut self, c: u8) {
        match c {
            b'\n' if self.after_cr => self.after_cr = false,
            b'\n' | b'\r' => {
                self.line = self.line.saturating_add(1);
                self.column = 1;
                self.after_cr = c == b'\r';
            }
            _ => {
                self.after_cr = false;
                // Continuation bytes belong to the character whose first byte was counted.
                if c & 0xC0 != 0x80 {
                    self.column = self.column.saturating_add(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
