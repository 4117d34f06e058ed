//! Gloo's `booleanExpr`: step names combined with `&&`, `||`, `!` and parentheses.
//!
//! Precedence is the usual one (`!` over `&&` over `||`), both binary operators associate to
//! the left, and evaluation goes left to right with short-circuiting, as Gloo documents
//! ("evaluated left to right but honors parenthesis and short-circuiting").

use std::collections::HashMap;

use super::error::ConfigError;

/// A parsed expression over step indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Step(usize),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Name(&'a str),
    And,
    Or,
    Not,
    Open,
    Close,
    End,
}

impl Token<'_> {
    fn describe(&self) -> String {
        match self {
            Token::Name(name) => format!("`{name}`"),
            Token::And => "`&&`".into(),
            Token::Or => "`||`".into(),
            Token::Not => "`!`".into(),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
            Token::End => "the end".into(),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')
}

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next token.
    at: usize,
    names: &'a HashMap<String, usize>,
}

fn error(text: &str, byte: usize, message: impl std::fmt::Display) -> ConfigError {
    // 1-based character position, as an editor shows it.
    let position = text[..byte].chars().count() + 1;
    ConfigError::new(
        "booleanExpr",
        format!("{message} at position {position} of {text:?}"),
    )
}

impl<'a> Parser<'a> {
    fn skip_space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    /// The next token and where it starts, without consuming it.
    fn peek(&mut self) -> Result<(Token<'a>, usize, usize), ConfigError> {
        self.skip_space();
        let start = self.at;
        let rest = &self.text[start..];
        let Some(c) = rest.chars().next() else {
            return Ok((Token::End, start, start));
        };
        let (token, len) = match c {
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            '!' => (Token::Not, 1),
            '&' if rest.starts_with("&&") => (Token::And, 2),
            '|' if rest.starts_with("||") => (Token::Or, 2),
            '&' => return Err(error(self.text, start, "expected `&&`")),
            '|' => return Err(error(self.text, start, "expected `||`")),
            c if is_name_char(c) => {
                let len = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
                (Token::Name(&rest[..len]), len)
            }
            other => return Err(error(self.text, start, format!("unexpected `{other}`"))),
        };
        Ok((token, start, start + len))
    }

    fn next(&mut self) -> Result<(Token<'a>, usize), ConfigError> {
        let (token, start, end) = self.peek()?;
        self.at = end;
        Ok((token, start))
    }

    fn or(&mut self) -> Result<Expr, ConfigError> {
        let mut left = self.and()?;
        while self.peek()?.0 == Token::Or {
            self.next()?;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ConfigError> {
        let mut left = self.unary()?;
        while self.peek()?.0 == Token::And {
            self.next()?;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ConfigError> {
        let (token, start) = self.next()?;
        match token {
            Token::Not => Ok(Expr::Not(Box::new(self.unary()?))),
            Token::Open => {
                let inner = self.or()?;
                match self.next()? {
                    (Token::Close, _) => Ok(inner),
                    (other, at) => Err(error(
                        self.text,
                        at,
                        format!(
                            "expected `)` (opened at position {}), found {}",
                            self.text[..start].chars().count() + 1,
                            other.describe()
                        ),
                    )),
                }
            }
            Token::Name(name) => self
                .names
                .get(name)
                .map(|i| Expr::Step(*i))
                .ok_or_else(|| error(self.text, start, format!("no config is named `{name}`"))),
            other => Err(error(
                self.text,
                start,
                format!(
                    "expected a config name, `!` or `(`, found {}",
                    other.describe()
                ),
            )),
        }
    }
}

/// Parses `text` over the step `names` (name to index).
pub(crate) fn parse(text: &str, names: &HashMap<String, usize>) -> Result<Expr, ConfigError> {
    let mut parser = Parser { text, at: 0, names };
    let expr = parser.or()?;
    match parser.next()? {
        (Token::End, _) => Ok(expr),
        (other, at) => Err(error(
            text,
            at,
            format!("expected `&&`, `||` or the end, found {}", other.describe()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> HashMap<String, usize> {
        ["a", "b", "c", "basic-1", "config_0"]
            .iter()
            .enumerate()
            .map(|(i, n)| ((*n).to_owned(), i))
            .collect()
    }

    fn step(i: usize) -> Box<Expr> {
        Box::new(Expr::Step(i))
    }

    #[test]
    fn precedence_and_associativity() {
        let n = names();
        assert_eq!(
            parse("a || b && c", &n),
            Ok(Expr::Or(step(0), Box::new(Expr::And(step(1), step(2)))))
        );
        assert_eq!(
            parse("(a || b) && !c", &n),
            Ok(Expr::And(
                Box::new(Expr::Or(step(0), step(1))),
                Box::new(Expr::Not(step(2)))
            ))
        );
        assert_eq!(
            parse("a&&b&&c", &n),
            Ok(Expr::And(Box::new(Expr::And(step(0), step(1))), step(2)))
        );
        assert_eq!(
            parse("!!basic-1", &n),
            Ok(Expr::Not(Box::new(Expr::Not(step(3)))))
        );
        assert_eq!(parse("  ( ( config_0 ) ) ", &n), Ok(Expr::Step(4)));
    }

    #[test]
    fn errors_name_the_position() {
        let n = names();
        let cases = [
            ("a ||", "booleanExpr: expected a config name, `!` or `(`, found the end at position 5 of \"a ||\""),
            ("a && x", "booleanExpr: no config is named `x` at position 6 of \"a && x\""),
            ("(a || b", "booleanExpr: expected `)` (opened at position 1), found the end at position 8 of \"(a || b\""),
            ("a b", "booleanExpr: expected `&&`, `||` or the end, found `b` at position 3 of \"a b\""),
            ("a & b", "booleanExpr: expected `&&` at position 3 of \"a & b\""),
            ("a | b", "booleanExpr: expected `||` at position 3 of \"a | b\""),
            ("a ) b", "booleanExpr: expected `&&`, `||` or the end, found `)` at position 3 of \"a ) b\""),
            ("", "booleanExpr: expected a config name, `!` or `(`, found the end at position 1 of \"\""),
            ("a && $", "booleanExpr: unexpected `$` at position 6 of \"a && $\""),
            ("é && a", "booleanExpr: no config is named `é` at position 1 of \"é && a\""),
            ("b && ()", "booleanExpr: expected a config name, `!` or `(`, found `)` at position 7 of \"b && ()\""),
        ];
        for (text, want) in cases {
            let err = parse(text, &n).expect_err(text);
            assert_eq!(err.to_string(), want);
        }
    }
}
