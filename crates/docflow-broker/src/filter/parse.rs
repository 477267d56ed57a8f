//! The grammar of SQL filters and rule actions: a tokenizer, then precedence climbing, with
//! Azure's length limit and a nesting limit that keeps every later walk off the stack's end.

use super::SysProp;
use super::sql::{BinOp, Expr, Prop, Step, V};

/// Parses a whole SQL filter expression.
pub(super) fn expression(text: &str) -> Result<Expr, String> {
    Parser::new(text)?.parse_full_expr()
}

/// Parses a rule action: `SET prop = expr` and `REMOVE prop` steps, separated by `;`.
pub(super) fn action(text: &str) -> Result<Vec<Step>, String> {
    let mut parser = Parser::new(text)?;
    let mut steps = Vec::new();
    loop {
        if parser.peek() == &Tok::Eof {
            break;
        }
        match parser.next_word().as_deref() {
            Some("set") => {
                let prop = parser.property()?;
                parser.expect(&Tok::Op("=".into()))?;
                steps.push(Step::Set(prop, parser.expr(0)?));
            }
            Some("remove") => steps.push(Step::Remove(parser.property()?)),
            _ => return Err(format!("expected SET or REMOVE at {}", parser.position())),
        }
        if parser.peek() == &Tok::Semicolon {
            parser.advance();
        } else if parser.peek() != &Tok::Eof {
            return Err(format!("expected ';' at {}", parser.position()));
        }
    }
    if steps.is_empty() {
        return Err("an action needs at least one SET or REMOVE".into());
    }
    Ok(steps)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Double(f64),
    Op(String),
    LParen,
    RParen,
    Comma,
    Dot,
    Semicolon,
    Eof,
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    /// Open parentheses, unary signs and NOTs around the current position.
    depth: usize,
}

/// Azure's limit on a SQL filter's or action's length, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 1024;
/// Deepest nesting (parentheses, NOT, unary signs) accepted, so that parsing, evaluating and
/// dropping an expression never exhausts the stack.
const MAX_NESTING: usize = 64;

impl Parser {
    fn new(text: &str) -> Result<Self, String> {
        let length = text.chars().count();
        if length > MAX_EXPRESSION_CHARS {
            return Err(format!(
                "the expression has {length} characters; at most {MAX_EXPRESSION_CHARS} are allowed"
            ));
        }
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let start = i;
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            let tok = match c {
                '(' => {
                    i += 1;
                    Tok::LParen
                }
                ')' => {
                    i += 1;
                    Tok::RParen
                }
                ',' => {
                    i += 1;
                    Tok::Comma
                }
                ';' => {
                    i += 1;
                    Tok::Semicolon
                }
                '\'' => {
                    let mut s = String::new();
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(format!("unterminated string at {start}")),
                            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                                s.push('\'');
                                i += 2;
                            }
                            Some('\'') => {
                                i += 1;
                                break;
                            }
                            Some(ch) => {
                                s.push(*ch);
                                i += 1;
                            }
                        }
                    }
                    Tok::Str(s)
                }
                '[' | '"' => {
                    let close = if c == '[' { ']' } else { '"' };
                    let mut s = String::new();
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(format!("unterminated identifier at {start}")),
                            Some(ch) if *ch == close && chars.get(i + 1) == Some(&close) => {
                                s.push(close);
                                i += 2;
                            }
                            Some(ch) if *ch == close => {
                                i += 1;
                                break;
                            }
                            Some(ch) => {
                                s.push(*ch);
                                i += 1;
                            }
                        }
                    }
                    Tok::Ident(s)
                }
                '=' | '+' | '-' | '*' | '/' | '%' => {
                    i += 1;
                    Tok::Op(c.to_string())
                }
                '<' | '>' | '!' => {
                    let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                    if ["<>", "<=", ">=", "!="].contains(&two.as_str()) {
                        i += 2;
                        Tok::Op(two)
                    } else if c == '!' {
                        return Err(format!("unexpected '!' at {start}"));
                    } else {
                        i += 1;
                        Tok::Op(c.to_string())
                    }
                }
                c if c.is_ascii_digit()
                    || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
                {
                    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                        i += 1;
                    }
                    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                        i += 1;
                        if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                            i += 1;
                        }
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                    let text: String = chars[start..i].iter().collect();
                    match text.parse::<i64>() {
                        Ok(n) => Tok::Int(n),
                        Err(_) => Tok::Double(
                            text.parse()
                                .map_err(|_| format!("bad number {text:?} at {start}"))?,
                        ),
                    }
                }
                '.' => {
                    i += 1;
                    Tok::Dot
                }
                c if c.is_alphabetic() || c == '_' || c == '$' => {
                    while i < chars.len()
                        && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                    {
                        i += 1;
                    }
                    Tok::Ident(chars[start..i].iter().collect())
                }
                other => return Err(format!("unexpected {other:?} at {start}")),
            };
            tokens.push((tok, start));
        }
        tokens.push((Tok::Eof, chars.len()));
        Ok(Self {
            tokens,
            pos: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].0
    }

    fn position(&self) -> usize {
        self.tokens[self.pos].1
    }

    fn advance(&mut self) -> Tok {
        let t = self.tokens[self.pos].0.clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), String> {
        if self.peek() == tok {
            self.advance();
            Ok(())
        } else {
            Err(format!("expected {tok:?} at {}", self.position()))
        }
    }

    fn keyword(&self) -> Option<String> {
        match self.peek() {
            Tok::Ident(s) => Some(s.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn next_word(&mut self) -> Option<String> {
        let word = self.keyword();
        if word.is_some() {
            self.advance();
        }
        word
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.keyword().as_deref() == Some(word) {
            self.advance();
            true
        } else {
            false
        }
    }

    /// Runs `parse` one nesting level deeper, refusing expressions nested too deep.
    fn nested(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<Expr, String>,
    ) -> Result<Expr, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "nested more than {MAX_NESTING} levels deep at {}",
                self.position()
            ));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn parse_full_expr(&mut self) -> Result<Expr, String> {
        let e = self.expr(0)?;
        if self.peek() != &Tok::Eof {
            return Err(format!(
                "unexpected {:?} at {}",
                self.peek(),
                self.position()
            ));
        }
        Ok(e)
    }

    /// Precedence climbing: 0 OR, 1 AND, 2 NOT, 3 comparisons, 4 + -, 5 * / %.
    fn expr(&mut self, level: u8) -> Result<Expr, String> {
        match level {
            0 | 1 => {
                let (word, op) = if level == 0 {
                    ("or", BinOp::Or)
                } else {
                    ("and", BinOp::And)
                };
                let mut left = self.expr(level + 1)?;
                while self.eat(word) {
                    let right = self.expr(level + 1)?;
                    left = Expr::Binary(Box::new(left), op, Box::new(right));
                }
                Ok(left)
            }
            2 => {
                if self.eat("not") {
                    let inner = self.nested(|p| p.expr(2))?;
                    Ok(Expr::Not(Box::new(inner)))
                } else {
                    self.expr(3)
                }
            }
            3 => self.comparison(),
            4 | 5 => {
                let mut left = self.expr(level + 1)?;
                loop {
                    let op = match (level, self.peek()) {
                        (4, Tok::Op(o)) if o == "+" => BinOp::Add,
                        (4, Tok::Op(o)) if o == "-" => BinOp::Sub,
                        (5, Tok::Op(o)) if o == "*" => BinOp::Mul,
                        (5, Tok::Op(o)) if o == "/" => BinOp::Div,
                        (5, Tok::Op(o)) if o == "%" => BinOp::Mod,
                        _ => break,
                    };
                    self.advance();
                    let right = self.expr(level + 1)?;
                    left = Expr::Binary(Box::new(left), op, Box::new(right));
                }
                Ok(left)
            }
            _ => self.unary(),
        }
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.expr(4)?;
        if self.eat("is") {
            let negated = self.eat("not");
            if !self.eat("null") {
                return Err(format!("expected NULL at {}", self.position()));
            }
            return Ok(Expr::IsNull(Box::new(left), negated));
        }
        let negated = self.eat("not");
        if self.eat("in") {
            self.expect(&Tok::LParen)?;
            let mut list = vec![self.expr(4)?];
            while self.peek() == &Tok::Comma {
                self.advance();
                list.push(self.expr(4)?);
            }
            self.expect(&Tok::RParen)?;
            return Ok(Expr::In(Box::new(left), list, negated));
        }
        if self.eat("like") {
            let Tok::Str(pattern) = self.advance() else {
                return Err(format!(
                    "LIKE needs a string pattern at {}",
                    self.position()
                ));
            };
            let escape = if self.eat("escape") {
                match self.advance() {
                    Tok::Str(e) if e.chars().count() == 1 => e.chars().next(),
                    _ => {
                        return Err(format!(
                            "ESCAPE needs a one-character string at {}",
                            self.position()
                        ));
                    }
                }
            } else {
                None
            };
            return Ok(Expr::Like(Box::new(left), pattern, escape, negated));
        }
        if negated {
            return Err(format!(
                "expected IN or LIKE after NOT at {}",
                self.position()
            ));
        }
        let op = match self.peek() {
            Tok::Op(o) => match o.as_str() {
                "=" => BinOp::Eq,
                "<>" | "!=" => BinOp::Ne,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                ">=" => BinOp::Ge,
                _ => return Ok(left),
            },
            _ => return Ok(left),
        };
        self.advance();
        let right = self.expr(4)?;
        Ok(Expr::Binary(Box::new(left), op, Box::new(right)))
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek().clone() {
            Tok::Op(o) if o == "-" => {
                self.advance();
                let inner = self.nested(Self::unary)?;
                Ok(Expr::Neg(Box::new(inner)))
            }
            Tok::Op(o) if o == "+" => {
                self.advance();
                self.nested(Self::unary)
            }
            Tok::LParen => {
                self.advance();
                let e = self.nested(|p| p.expr(0))?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Tok::Str(s) => {
                self.advance();
                Ok(Expr::Const(V::Str(s)))
            }
            Tok::Int(n) => {
                self.advance();
                Ok(Expr::Const(V::Int(n)))
            }
            Tok::Double(x) => {
                self.advance();
                Ok(Expr::Const(V::Double(x)))
            }
            Tok::Ident(word) => {
                let lower = word.to_ascii_lowercase();
                match lower.as_str() {
                    "true" => {
                        self.advance();
                        Ok(Expr::Const(V::Bool(true)))
                    }
                    "false" => {
                        self.advance();
                        Ok(Expr::Const(V::Bool(false)))
                    }
                    "null" => {
                        self.advance();
                        Ok(Expr::Const(V::Null))
                    }
                    "exists" => {
                        self.advance();
                        self.expect(&Tok::LParen)?;
                        let p = self.property()?;
                        self.expect(&Tok::RParen)?;
                        Ok(Expr::Exists(p))
                    }
                    "newid"
                        if self.tokens.get(self.pos + 1).map(|t| &t.0) == Some(&Tok::LParen) =>
                    {
                        self.advance();
                        self.expect(&Tok::LParen)?;
                        self.expect(&Tok::RParen)?;
                        Ok(Expr::NewId)
                    }
                    "property" | "p"
                        if self.tokens.get(self.pos + 1).map(|t| &t.0) == Some(&Tok::LParen) =>
                    {
                        self.advance();
                        self.expect(&Tok::LParen)?;
                        let Tok::Str(name) = self.advance() else {
                            return Err(format!(
                                "property() needs a string at {}",
                                self.position()
                            ));
                        };
                        self.expect(&Tok::RParen)?;
                        Ok(Expr::Prop(user_or_sys(&name)?))
                    }
                    _ => Ok(Expr::Prop(self.property()?)),
                }
            }
            other => Err(format!("unexpected {other:?} at {}", self.position())),
        }
    }

    fn property(&mut self) -> Result<Prop, String> {
        let Tok::Ident(first) = self.advance() else {
            return Err(format!("expected a property name at {}", self.position()));
        };
        if self.peek() == &Tok::Dot {
            self.advance();
            let Tok::Ident(name) = self.advance() else {
                return Err(format!(
                    "expected a property name after '.' at {}",
                    self.position()
                ));
            };
            return match first.to_ascii_lowercase().as_str() {
                "sys" => SysProp::parse(&name)
                    .map(Prop::Sys)
                    .ok_or_else(|| format!("unknown system property sys.{name}")),
                "user" => Ok(Prop::User(name)),
                other => Err(format!("unknown scope {other:?}; use sys. or user.")),
            };
        }
        Ok(Prop::User(first))
    }
}

fn user_or_sys(name: &str) -> Result<Prop, String> {
    match name.split_once('.') {
        Some((scope, rest)) if scope.eq_ignore_ascii_case("sys") => SysProp::parse(rest)
            .map(Prop::Sys)
            .ok_or_else(|| format!("unknown system property {name}")),
        Some((scope, rest)) if scope.eq_ignore_ascii_case("user") => {
            Ok(Prop::User(rest.to_string()))
        }
        _ => Ok(Prop::User(name.to_string())),
    }
}
