//! Tokeniser for FHIRPath source text: literals (strings with escapes, numbers, `@` date/time
//! literals), identifiers (plain and back-tick delimited), `$`/`%` names, operators and comments.
//! Keywords are left as identifiers; the parser gives them meaning by position, because words
//! like `contains`, `is` and `as` are also function names.

use super::ParseError;

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    /// A plain identifier or keyword.
    Ident(String),
    /// A `` `delimited` `` identifier: never a keyword.
    Delimited(String),
    Str(String),
    /// Integer or decimal text as written.
    Number(String),
    /// `@…` date, date-time or time literal text without the `@`.
    DateTime(String),
    /// `$this`, `$index`, `$total` (name without `$`).
    Dollar(String),
    /// `%name`, `` %`name` `` or `%'name'` (name without `%`).
    External(String),
    Symbol(&'static str),
    End,
}

const SYMBOLS: &[&str] = &[
    "!=", "!~", "<=", ">=", ".", "[", "]", "(", ")", "{", "}", ",", "+", "-", "*", "/", "&", "|", "=", "~", "<", ">",
];

pub fn tokenize(source: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer { src: source, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next()?;
        let end = token == Token::End;
        tokens.push(token);
        if end {
            return Ok(tokens);
        }
    }
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

fn error(message: impl Into<String>) -> ParseError {
    ParseError {
        message: message.into(),
    }
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                let end = body.find("*/").ok_or_else(|| error("unterminated comment"))?;
                self.pos += 2 + end + 2;
            } else {
                return Ok(());
            }
        }
    }

    fn next(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia()?;
        let Some(c) = self.peek() else {
            return Ok(Token::End);
        };
        match c {
            '\'' => {
                self.pos += 1;
                Ok(Token::Str(self.quoted('\'')?))
            }
            '`' => {
                self.pos += 1;
                Ok(Token::Delimited(self.quoted('`')?))
            }
            '@' => {
                self.pos += 1;
                Ok(Token::DateTime(self.datetime_text()?))
            }
            '$' => {
                self.pos += 1;
                let name = self.word();
                if name.is_empty() {
                    return Err(error("expected a name after '$'"));
                }
                Ok(Token::Dollar(name))
            }
            '%' => {
                self.pos += 1;
                let name = match self.peek() {
                    Some('`') => {
                        self.pos += 1;
                        self.quoted('`')?
                    }
                    Some('\'') => {
                        self.pos += 1;
                        self.quoted('\'')?
                    }
                    _ => self.word(),
                };
                if name.is_empty() {
                    return Err(error("expected a name after '%'"));
                }
                Ok(Token::External(name))
            }
            '0'..='9' => Ok(Token::Number(self.number())),
            c if c.is_alphabetic() || c == '_' => Ok(Token::Ident(self.word())),
            _ => {
                let rest = self.rest();
                let symbol = SYMBOLS
                    .iter()
                    .find(|s| rest.starts_with(**s))
                    .ok_or_else(|| error(format!("unexpected character '{c}'")))?;
                self.pos += symbol.len();
                Ok(Token::Symbol(symbol))
            }
        }
    }

    fn word(&mut self) -> String {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_owned()
    }

    fn number(&mut self) -> String {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        let mut len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        // `1.foo()` is an invocation on 1; only `1.5` continues the number.
        if bytes.get(len) == Some(&b'.') && bytes.get(len + 1).is_some_and(|b| b.is_ascii_digit()) {
            len += 1 + bytes[len + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        }
        self.pos += len;
        rest[..len].to_owned()
    }

    /// Reads the text of a string or delimited identifier, resolving escapes.
    fn quoted(&mut self, quote: char) -> Result<String, ParseError> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + 1;
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let (_, escaped) = chars.next().ok_or_else(|| error("unterminated escape"))?;
            match escaped {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                    let code = u32::from_str_radix(&hex, 16).map_err(|_| error("bad \\u escape"))?;
                    out.push(char::from_u32(code).ok_or_else(|| error("bad \\u escape"))?);
                }
                other => out.push(other),
            }
        }
        Err(error(format!("unterminated {quote}")))
    }

    /// The text after `@`: a date, a date-time (`2015T`, `2015-02-04T14:34:28.123+10:00`) or a
    /// time (`T14:34`). The shape is checked later; here we only find where it ends.
    fn datetime_text(&mut self) -> Result<String, ParseError> {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        let mut i = 0;
        let digits = |i: &mut usize| {
            let start = *i;
            while bytes.get(*i).is_some_and(|b| b.is_ascii_digit()) {
                *i += 1;
            }
            *i - start
        };
        let mut has_time = false;
        if bytes.first() != Some(&b'T') {
            digits(&mut i);
            while bytes.get(i) == Some(&b'-') && bytes.get(i + 1).is_some_and(|b| b.is_ascii_digit()) {
                i += 1;
                digits(&mut i);
            }
            if bytes.get(i) == Some(&b'T') {
                i += 1;
                has_time = bytes.get(i).is_some_and(|b| b.is_ascii_digit());
            }
        } else {
            i += 1;
            has_time = true;
        }
        if has_time {
            digits(&mut i);
            while bytes.get(i) == Some(&b':') && bytes.get(i + 1).is_some_and(|b| b.is_ascii_digit()) {
                i += 1;
                digits(&mut i);
            }
            if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(|b| b.is_ascii_digit()) {
                i += 1;
                digits(&mut i);
            }
            if bytes.get(i) == Some(&b'Z') {
                i += 1;
            } else if matches!(bytes.get(i), Some(b'+') | Some(b'-'))
                && bytes.get(i + 1).is_some_and(|b| b.is_ascii_digit())
                && bytes.get(i + 3) == Some(&b':')
            {
                i += 1;
                digits(&mut i);
                i += 1;
                digits(&mut i);
            }
        }
        if i == 0 {
            return Err(error("expected a date or time after '@'"));
        }
        self.pos += i;
        Ok(rest[..i].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stop_before_an_invocation() {
        let tokens = tokenize("1.convertsToInteger() + 2.5").unwrap();
        assert_eq!(tokens[0], Token::Number("1".into()));
        assert_eq!(tokens[1], Token::Symbol("."));
        assert_eq!(tokens[6], Token::Number("2.5".into()));
    }

    #[test]
    fn strings_resolve_escapes_and_comments_are_skipped() {
        let tokens = tokenize("'a\\'b\\u0065' // done\n/* x */ `given`").unwrap();
        assert_eq!(tokens[0], Token::Str("a'be".into()));
        assert_eq!(tokens[1], Token::Delimited("given".into()));
        assert!(tokenize("2 + 2 /* not finished").is_err());
    }

    #[test]
    fn datetime_literals_end_before_invocations() {
        let tokens = tokenize("@2015-02-04T14:34:28.123.is(DateTime) @T10:30 @2014-01-01T08.x").unwrap();
        assert_eq!(tokens[0], Token::DateTime("2015-02-04T14:34:28.123".into()));
        assert_eq!(tokens[6], Token::DateTime("T10:30".into()));
        assert_eq!(tokens[7], Token::DateTime("2014-01-01T08".into()));
    }
}
