//! Postgres reports an error's position as a 1-based character offset within the statement
//! it was sent; people want the line and column in their file.

use crate::split::Statement;

/// The file line and column (1-based, columns in characters) of the `position`th character
/// of `statement`, counting line ends as the splitter does (`\n`, `\r\n`, lone `\r`). A
/// position past the end (Postgres points one past the last character for "unexpected end
/// of input") lands just after the last character.
pub fn file_position(statement: &Statement<'_>, position: usize) -> (u32, u32) {
    let (mut line, mut column) = (statement.line, statement.column);
    let mut chars = statement
        .text
        .chars()
        .take(position.saturating_sub(1))
        .peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                line += 1;
                column = 1;
            }
            _ => column += 1,
        }
    }
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(text: &str, line: u32, column: u32) -> Statement<'_> {
        Statement {
            text,
            offset: 0,
            line,
            column,
        }
    }

    #[test]
    fn first_character_is_the_statement_start() {
        assert_eq!(file_position(&statement("SELEC 1", 3, 5), 1), (3, 5));
        assert_eq!(file_position(&statement("SELECT 1", 3, 5), 8), (3, 12));
    }

    #[test]
    fn line_ends_and_multibyte_characters() {
        let s = statement("SELECT 'é',\r\n  x\rFROM\n  t", 2, 1);
        // Position of `x`: 13 characters before it (`SELECT 'é',` = 11, `\r\n` = 2, two spaces).
        assert_eq!(file_position(&s, 16), (3, 3));
        assert_eq!(file_position(&s, 18), (4, 1));
        assert_eq!(file_position(&s, 25), (5, 3));
    }
}
