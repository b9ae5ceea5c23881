//! Precedence-climbing parser from tokens to [`Expr`]. Levels, loosest first: `implies`;
//! `or xor`; `and`; `in contains`; `= ~ != !~`; `< > <= >=`; `|`; `is as`; `+ - &`;
//! `* / div mod`; unary `+ -`; then `.` invocations and `[]` indexers.

use super::ParseError;
use super::ast::{BinaryOp, Expr, Func, Literal, TypeOp, TypeSpec, UnaryOp};
use super::dates::{DateTime, Time};
use super::decimal::Decimal;
use super::lexer::{Token, tokenize};
use super::quantity::Quantity;
use super::units::calendar_keyword;

pub fn parse(source: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = parser.expression(0)?;
    match parser.peek() {
        Token::End => Ok(expr),
        other => Err(error(format!("unexpected {other:?} after the expression"))),
    }
}

fn error(message: impl Into<String>) -> ParseError {
    ParseError {
        message: message.into(),
    }
}

/// Binary operators with their precedence level (higher binds tighter).
fn binary_op(token: &Token) -> Option<(BinaryOp, u8)> {
    let op = match token {
        Token::Ident(word) => match word.as_str() {
            "implies" => (BinaryOp::Implies, 1),
            "or" => (BinaryOp::Or, 2),
            "xor" => (BinaryOp::Xor, 2),
            "and" => (BinaryOp::And, 3),
            "in" => (BinaryOp::In, 4),
            "contains" => (BinaryOp::Contains, 4),
            "div" => (BinaryOp::IntDiv, 10),
            "mod" => (BinaryOp::Mod, 10),
            _ => return None,
        },
        Token::Symbol(symbol) => match *symbol {
            "=" => (BinaryOp::Eq, 5),
            "~" => (BinaryOp::Equiv, 5),
            "!=" => (BinaryOp::Ne, 5),
            "!~" => (BinaryOp::NotEquiv, 5),
            "<" => (BinaryOp::Lt, 6),
            ">" => (BinaryOp::Gt, 6),
            "<=" => (BinaryOp::Le, 6),
            ">=" => (BinaryOp::Ge, 6),
            "|" => (BinaryOp::Union, 7),
            "+" => (BinaryOp::Add, 9),
            "-" => (BinaryOp::Sub, 9),
            "&" => (BinaryOp::Concat, 9),
            "*" => (BinaryOp::Mul, 10),
            "/" => (BinaryOp::Div, 10),
            _ => return None,
        },
        _ => return None,
    };
    Some(op)
}

/// The level of `is` and `as`, whose right-hand side is a type name rather than an expression.
const TYPE_LEVEL: u8 = 8;

/// The deepest an expression may nest: parenthesised and nested expressions, and the chains of
/// invocations and operators that each wrap the expression before them. Parsing, evaluating and
/// dropping an expression recurse once per level, and expressions come from clients too (a
/// FHIRPath Patch's `path`): far beyond any real expression, far within a thread's stack.
pub const MAX_DEPTH: usize = 128;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Levels of nesting around the expression being parsed (see `MAX_DEPTH`).
    depth: usize,
}

impl Parser {
    /// One level deeper; an error past `MAX_DEPTH`.
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error(format!("the expression nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// Runs `parse` one level deeper, back at this level after it.
    fn nested<T>(&mut self, parse: impl FnOnce(&mut Self) -> Result<T, ParseError>) -> Result<T, ParseError> {
        let saved = self.depth;
        self.enter()?;
        let parsed = parse(self);
        self.depth = saved;
        parsed
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn advance(&mut self) -> Token {
        let token = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn is_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Token::Symbol(s) if *s == symbol)
    }

    fn expect(&mut self, symbol: &str) -> Result<(), ParseError> {
        if self.is_symbol(symbol) {
            self.advance();
            Ok(())
        } else {
            Err(error(format!("expected '{symbol}', found {:?}", self.peek())))
        }
    }

    fn expression(&mut self, min_level: u8) -> Result<Expr, ParseError> {
        self.nested(|parser| parser.expression_within(min_level))
    }

    fn expression_within(&mut self, min_level: u8) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        loop {
            let token = self.peek().clone();
            if let Token::Ident(word) = &token
                && (word == "is" || word == "as")
                && TYPE_LEVEL > min_level
            {
                self.advance();
                self.enter()?;
                let spec = self.type_spec()?;
                let op = if word == "is" { TypeOp::Is } else { TypeOp::As };
                left = Expr::Type {
                    target: Some(Box::new(left)),
                    op,
                    function: false,
                    spec,
                };
                continue;
            }
            let Some((op, level)) = binary_op(&token) else {
                return Ok(left);
            };
            if level <= min_level {
                return Ok(left);
            }
            self.advance();
            self.enter()?;
            let right = self.expression(level)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let op = match self.peek() {
            Token::Symbol("+") => UnaryOp::Plus,
            Token::Symbol("-") => UnaryOp::Minus,
            _ => return self.postfix(),
        };
        self.advance();
        let operand = self.nested(Self::unary)?;
        Ok(Expr::Unary(op, Box::new(operand)))
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let saved = self.depth;
        let mut expr = self.term()?;
        let parsed = loop {
            self.enter()?;
            if self.is_symbol(".") {
                self.advance();
                let name = self.identifier()?;
                expr = if self.is_symbol("(") {
                    self.call(Some(expr), &name)?
                } else {
                    Expr::Member(Box::new(expr), name)
                };
            } else if self.is_symbol("[") {
                self.advance();
                let index = self.expression(0)?;
                self.expect("]")?;
                expr = Expr::Indexer(Box::new(expr), Box::new(index));
            } else {
                break expr;
            }
        };
        self.depth = saved;
        Ok(parsed)
    }

    fn identifier(&mut self) -> Result<String, ParseError> {
        match self.advance() {
            Token::Ident(name) | Token::Delimited(name) => Ok(name),
            other => Err(error(format!("expected an identifier, found {other:?}"))),
        }
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        match self.advance() {
            Token::Number(text) => self.number(&text),
            Token::Str(text) => Ok(Expr::Literal(Literal::String(text))),
            Token::DateTime(text) => datetime_literal(&text).map(Expr::Literal),
            Token::Dollar(name) => match name.as_str() {
                "this" => Ok(Expr::This),
                "index" => Ok(Expr::Index),
                "total" => Ok(Expr::Total),
                _ => Err(error(format!("unknown variable ${name}"))),
            },
            Token::External(name) => Ok(Expr::External(name)),
            Token::Symbol("(") => {
                let inner = self.expression(0)?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Symbol("{") => {
                self.expect("}")?;
                Ok(Expr::Empty)
            }
            Token::Ident(word) if word == "true" || word == "false" => {
                Ok(Expr::Literal(Literal::Boolean(word == "true")))
            }
            Token::Ident(name) if self.is_symbol("(") => self.call(None, &name),
            Token::Ident(name) | Token::Delimited(name) => Ok(Expr::Identifier(name)),
            other => Err(error(format!("unexpected {other:?}"))),
        }
    }

    /// A number, or a quantity when a unit string or calendar keyword follows.
    fn number(&mut self, text: &str) -> Result<Expr, ParseError> {
        let unit = match self.peek() {
            Token::Str(unit) => Some(unit.clone()),
            Token::Ident(word) if calendar_keyword(word).is_some() => Some(word.clone()),
            _ => None,
        };
        if let Some(unit) = unit {
            self.advance();
            let value = Decimal::parse(text).ok_or_else(|| error("bad number"))?;
            return Ok(Expr::Literal(Literal::Quantity(Quantity::new(value, unit))));
        }
        if text.contains('.') {
            let value = Decimal::parse(text).ok_or_else(|| error("bad number"))?;
            Ok(Expr::Literal(Literal::Decimal(value)))
        } else {
            let value = text
                .parse::<i64>()
                .map_err(|_| error(format!("integer {text} is too large")))?;
            Ok(Expr::Literal(Literal::Integer(value)))
        }
    }

    fn call(&mut self, target: Option<Expr>, name: &str) -> Result<Expr, ParseError> {
        self.expect("(")?;
        let mut args = Vec::new();
        if !self.is_symbol(")") {
            // A call's frame is the largest of the parser's: its arguments count for more.
            let saved = self.depth;
            self.depth += 3;
            loop {
                args.push(self.expression(0)?);
                if self.is_symbol(",") {
                    self.advance();
                } else {
                    break;
                }
            }
            self.depth = saved;
        }
        self.expect(")")?;
        let target = target.map(Box::new);
        let type_op = match name {
            "is" => Some(TypeOp::Is),
            "as" => Some(TypeOp::As),
            "ofType" => Some(TypeOp::OfType),
            _ => None,
        };
        if let Some(op) = type_op {
            let [arg] = <[Expr; 1]>::try_from(args).map_err(|_| error(format!("{name}() takes one type")))?;
            let spec = type_spec_of(&arg).ok_or_else(|| error(format!("{name}() needs a type name")))?;
            return Ok(Expr::Type {
                target,
                op,
                function: true,
                spec,
            });
        }
        let (func, min, max) = Func::lookup(name).ok_or_else(|| error(format!("unknown function {name}()")))?;
        if args.len() < min || args.len() > max {
            return Err(error(format!(
                "{name}() takes {min} to {max} arguments, not {}",
                args.len()
            )));
        }
        Ok(Expr::Call { target, func, args })
    }

    fn type_spec(&mut self) -> Result<TypeSpec, ParseError> {
        let first = self.identifier()?;
        if self.is_symbol(".") {
            self.advance();
            let name = self.identifier()?;
            return Ok(TypeSpec {
                namespace: Some(first),
                name,
            });
        }
        Ok(TypeSpec {
            namespace: None,
            name: first,
        })
    }
}

/// The type named by an argument of `is()`, `as()` or `ofType()`.
fn type_spec_of(expr: &Expr) -> Option<TypeSpec> {
    match expr {
        Expr::Identifier(name) => Some(TypeSpec {
            namespace: None,
            name: name.clone(),
        }),
        Expr::Member(inner, name) => match inner.as_ref() {
            Expr::Identifier(namespace) => Some(TypeSpec {
                namespace: Some(namespace.clone()),
                name: name.clone(),
            }),
            _ => None,
        },
        _ => None,
    }
}

fn datetime_literal(text: &str) -> Result<Literal, ParseError> {
    let bad = || error(format!("invalid date/time literal @{text}"));
    if let Some(time) = text.strip_prefix('T') {
        return Time::parse(time).map(Literal::Time).ok_or_else(bad);
    }
    if text.contains('T') {
        return DateTime::parse_datetime(text).map(Literal::DateTime).ok_or_else(bad);
    }
    DateTime::parse_date(text).map(Literal::Date).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_past_the_limit_is_an_error_not_a_stack_overflow() {
        let deep =
            |open: &str, middle: &str, close: &str, n: usize| format!("{}{middle}{}", open.repeat(n), close.repeat(n));
        for source in [
            deep("(", "1", ")", 100_000),
            deep("-", "1", "", 100_000),
            format!("Patient{}", ".name".repeat(100_000)),
            format!("1{}", " + 1".repeat(100_000)),
            deep("a[", "0", "]", 100_000),
            deep("f(", "1", ")", 100_000),
        ] {
            let refused = parse(&source).unwrap_err();
            assert!(refused.message.contains("deeper than"), "{}", refused.message);
        }
        assert!(parse(&deep("(", "1", ")", 50)).is_ok());
        assert!(parse(&format!("Patient{}", ".name".repeat(100))).is_ok());
    }

    fn shape(expr: &Expr) -> String {
        match expr {
            Expr::Literal(Literal::Integer(i)) => i.to_string(),
            Expr::Literal(Literal::Boolean(b)) => b.to_string(),
            Expr::Identifier(name) => name.clone(),
            Expr::Member(target, name) => format!("{}.{name}", shape(target)),
            Expr::Call { target, func, args } => {
                let args: Vec<String> = args.iter().map(shape).collect();
                let target = target.as_ref().map(|t| format!("{}.", shape(t))).unwrap_or_default();
                format!("{target}{}({})", func.name(), args.join(","))
            }
            Expr::Type { target, op, spec, .. } => {
                format!(
                    "({} {op:?} {})",
                    target.as_ref().map(|t| shape(t)).unwrap_or_default(),
                    spec.name
                )
            }
            Expr::Unary(op, inner) => format!("({op:?} {})", shape(inner)),
            Expr::Binary(op, a, b) => format!("({} {op:?} {})", shape(a), shape(b)),
            other => format!("{other:?}"),
        }
    }

    fn parsed(source: &str) -> String {
        shape(&parse(source).unwrap())
    }

    #[test]
    fn multiplication_binds_tighter_than_addition() {
        assert_eq!(parsed("1+2*3+4"), "((1 Add (2 Mul 3)) Add 4)");
    }

    #[test]
    fn unary_minus_applies_to_the_whole_invocation_chain() {
        assert_eq!(parsed("-1.convertsToInteger()"), "(Minus 1.convertsToInteger())");
    }

    #[test]
    fn is_binds_tighter_than_comparison_and_union() {
        assert_eq!(parsed("1 > 2 is Boolean"), "(1 Gt (2 Is Boolean))");
        assert_eq!(parsed("1 | 1 is Integer"), "(1 Union (1 Is Integer))");
    }

    #[test]
    fn logical_operators_have_their_own_levels() {
        assert_eq!(
            parsed("true and 1 in 2 implies false or true"),
            "((true And (1 In 2)) Implies (false Or true))"
        );
    }

    #[test]
    fn keywords_after_a_dot_are_function_names() {
        assert_eq!(
            parsed("'a'.contains('b')"),
            "Literal(String(\"a\")).contains(Literal(String(\"b\")))"
        );
        assert!(parse("name.foo()").is_err());
        assert!(parse("2 + 2 /").is_err());
    }
}
