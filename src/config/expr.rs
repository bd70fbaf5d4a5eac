//! numpy-style expressions from pipeline configs, translated to SQL.
//!
//! The reference evaluates `expression:` strings with Python's `eval` over the cell's
//! columns as numpy arrays, e.g. `1.0 / np.sqrt(np.sum(1.0 / s_li**2))`. magg parses the
//! same small language (numbers, column names, `+ - * / **`, unary minus, parentheses and
//! calls of a fixed set of numpy functions) and prints the equivalent SQL, so the
//! expression runs inside the `GROUP BY cell` query instead of a Python loop.
//!
//! Two kinds of functions exist, as in numpy: reductions (`np.sum`, `len`, `np.mean`, ...)
//! turn a column into one number per cell and become SQL aggregates; element-wise
//! functions (`np.sqrt`, `abs`, `np.log`, ...) become scalar SQL functions. An expression
//! used as an aggregation variable must reduce every column it mentions, because a bare
//! column has no single value per cell (in the reference it fails at `float(...)`).

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Why an expression could not be translated. The caller adds the file and key path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The text does not parse.
    #[error("cannot parse {text:?} at character {pos}: {detail}")]
    Syntax {
        /// The expression.
        text: String,
        /// 0-based character position of the problem.
        pos: usize,
        /// What was expected.
        detail: String,
    },
    /// A name is neither a column nor a known function.
    #[error("unknown name {name:?} in {text:?}; columns are {columns}, functions are {functions}")]
    UnknownName {
        /// The expression.
        text: String,
        /// The unknown identifier.
        name: String,
        /// The columns that exist.
        columns: String,
        /// The functions that exist.
        functions: String,
    },
    /// A column is used outside any reduction in an aggregate expression.
    #[error("column {column:?} in {text:?} is not inside a reduction such as np.sum(...) or len(...); an aggregation needs one value per cell")]
    BareColumn {
        /// The expression.
        text: String,
        /// The column.
        column: String,
    },
    /// A function got the wrong number of arguments.
    #[error("{function} takes {expected} argument(s), got {got} in {text:?}")]
    Arity {
        /// The expression.
        text: String,
        /// The function.
        function: String,
        /// Expected count.
        expected: usize,
        /// Actual count.
        got: usize,
    },
}

/// A numpy function the translator knows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Func {
    /// The numpy/Python name, without the `np.` prefix.
    name: &'static str,
    /// SQL template: `{0}` is the argument.
    sql: &'static str,
    /// Whether it reduces a column to one value.
    reduces: bool,
}

const FUNCS: &[Func] = &[
    Func { name: "sum", sql: "sum({0})", reduces: true },
    Func { name: "nansum", sql: "sum({0})", reduces: true },
    Func { name: "len", sql: "count({0})", reduces: true },
    Func { name: "count_nonzero", sql: "sum(CASE WHEN {0} <> 0 THEN 1 ELSE 0 END)", reduces: true },
    Func { name: "mean", sql: "avg({0})", reduces: true },
    Func { name: "nanmean", sql: "avg({0})", reduces: true },
    Func { name: "average", sql: "avg({0})", reduces: true },
    Func { name: "min", sql: "min({0})", reduces: true },
    Func { name: "nanmin", sql: "min({0})", reduces: true },
    Func { name: "amin", sql: "min({0})", reduces: true },
    Func { name: "max", sql: "max({0})", reduces: true },
    Func { name: "nanmax", sql: "max({0})", reduces: true },
    Func { name: "amax", sql: "max({0})", reduces: true },
    Func { name: "var", sql: "np_var({0})", reduces: true },
    Func { name: "nanvar", sql: "np_var({0})", reduces: true },
    Func { name: "std", sql: "np_std({0})", reduces: true },
    Func { name: "nanstd", sql: "np_std({0})", reduces: true },
    Func { name: "median", sql: "np_median({0})", reduces: true },
    Func { name: "nanmedian", sql: "np_median({0})", reduces: true },
    Func { name: "sqrt", sql: "sqrt({0})", reduces: false },
    Func { name: "abs", sql: "abs({0})", reduces: false },
    Func { name: "fabs", sql: "abs({0})", reduces: false },
    Func { name: "log", sql: "ln({0})", reduces: false },
    Func { name: "log10", sql: "log10({0})", reduces: false },
    Func { name: "log2", sql: "log2({0})", reduces: false },
    Func { name: "exp", sql: "exp({0})", reduces: false },
    Func { name: "square", sql: "power({0}, 2)", reduces: false },
    Func { name: "float", sql: "CAST({0} AS DOUBLE)", reduces: false },
    Func { name: "int", sql: "CAST(trunc({0}) AS BIGINT)", reduces: false },
];

fn func(name: &str) -> Option<&'static Func> {
    FUNCS.iter().find(|f| f.name == name)
}

fn function_names() -> String {
    FUNCS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// Parsed expression tree.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Number(String),
    Column(String),
    Neg(Box<Node>),
    Binary(char, Box<Node>, Box<Node>),
    Pow(Box<Node>, Box<Node>),
    Call(&'static Func, Box<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Ident(String),
    Op(char),
    Pow,
    LParen,
    RParen,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let syntax = |pos: usize, detail: &str| ExprError::Syntax {
        text: text.to_owned(),
        pos,
        detail: detail.to_owned(),
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
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
            let s: String = chars[start..i].iter().collect();
            if s.parse::<f64>().is_err() {
                return Err(syntax(start, "a number"));
            }
            out.push((start, Tok::Num(s)));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            out.push((start, Tok::Ident(chars[start..i].iter().collect())));
        } else if c == '*' && chars.get(i + 1) == Some(&'*') {
            out.push((i, Tok::Pow));
            i += 2;
        } else if "+-*/".contains(c) {
            out.push((i, Tok::Op(c)));
            i += 1;
        } else if c == '(' {
            out.push((i, Tok::LParen));
            i += 1;
        } else if c == ')' {
            out.push((i, Tok::RParen));
            i += 1;
        } else if c == ',' {
            out.push((i, Tok::Comma));
            i += 1;
        } else {
            return Err(syntax(i, &format!("an operator, number or name, got {c:?}")));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
    columns: &'a [String],
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn here(&self) -> usize {
        self.toks.get(self.pos).map_or(self.text.chars().count(), |(p, _)| *p)
    }

    fn err(&self, detail: &str) -> ExprError {
        ExprError::Syntax {
            text: self.text.to_owned(),
            pos: self.here(),
            detail: detail.to_owned(),
        }
    }

    // expr := term (('+'|'-') term)*
    fn expr(&mut self) -> Result<Node, ExprError> {
        self.left_assoc(&['+', '-'], Self::term)
    }

    // term := unary (('*'|'/') unary)*
    fn term(&mut self) -> Result<Node, ExprError> {
        self.left_assoc(&['*', '/'], Self::unary)
    }

    /// `operand (op operand)*` for the operators `ops`, grouped to the left.
    fn left_assoc(&mut self, ops: &[char], operand: fn(&mut Self) -> Result<Node, ExprError>) -> Result<Node, ExprError> {
        let mut left = operand(self)?;
        while let Some(Tok::Op(op)) = self.peek().cloned() {
            if !ops.contains(&op) {
                break;
            }
            self.pos += 1;
            let right = operand(self)?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    // unary := '-' unary | '+' unary | power   (Python: -x**2 == -(x**2))
    fn unary(&mut self) -> Result<Node, ExprError> {
        match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                Ok(Node::Neg(Box::new(self.unary()?)))
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    // power := atom ('**' unary)?   (right-associative, binds tighter than unary on the left)
    fn power(&mut self) -> Result<Node, ExprError> {
        let base = self.atom()?;
        if self.peek() == Some(&Tok::Pow) {
            self.pos += 1;
            let exp = self.unary()?;
            return Ok(Node::Pow(Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, ExprError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.err("a number, name or '('"));
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Node::Number(n)),
            Tok::LParen => {
                let inner = self.expr()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err("')'"));
                }
                self.pos += 1;
                Ok(inner)
            }
            Tok::Ident(name) => {
                let bare = name
                    .strip_prefix("np.")
                    .or_else(|| name.strip_prefix("numpy."))
                    .unwrap_or(&name);
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    let f = func(bare).ok_or_else(|| self.unknown(&name))?;
                    let mut args = vec![self.expr()?];
                    while self.peek() == Some(&Tok::Comma) {
                        self.pos += 1;
                        args.push(self.expr()?);
                    }
                    if self.peek() != Some(&Tok::RParen) {
                        return Err(self.err("')' or ','"));
                    }
                    self.pos += 1;
                    if args.len() != 1 {
                        return Err(ExprError::Arity {
                            text: self.text.to_owned(),
                            function: name,
                            expected: 1,
                            got: args.len(),
                        });
                    }
                    Ok(Node::Call(f, Box::new(args.remove(0))))
                } else if self.columns.iter().any(|c| c == &name) {
                    Ok(Node::Column(name))
                } else if bare == "pi" && name != bare {
                    Ok(Node::Number(std::f64::consts::PI.to_string()))
                } else {
                    Err(self.unknown(&name))
                }
            }
            _ => Err(ExprError::Syntax {
                text: self.text.to_owned(),
                pos: self.toks[self.pos - 1].0,
                detail: "a number, name or '('".into(),
            }),
        }
    }

    fn unknown(&self, name: &str) -> ExprError {
        ExprError::UnknownName {
            text: self.text.to_owned(),
            name: name.to_owned(),
            columns: self.columns.join(", "),
            functions: function_names(),
        }
    }
}

fn parse(text: &str, columns: &[String]) -> Result<Node, ExprError> {
    let mut p = Parser {
        text,
        toks: tokenize(text)?,
        pos: 0,
        columns,
    };
    let node = p.expr()?;
    if p.pos != p.toks.len() {
        return Err(p.err("an operator or the end of the expression"));
    }
    Ok(node)
}

fn to_sql(node: &Node, out: &mut String) {
    match node {
        Node::Number(n) => {
            // Keep float literals float: `1 / x` in Python 3 is true division.
            if n.contains(['.', 'e', 'E']) {
                out.push_str(n);
            } else {
                let _ = write!(out, "{n}.0");
            }
        }
        Node::Column(c) => {
            let _ = write!(out, "\"{c}\"");
        }
        Node::Neg(inner) => {
            out.push_str("(-");
            to_sql(inner, out);
            out.push(')');
        }
        Node::Binary(op, l, r) => {
            out.push('(');
            to_sql(l, out);
            let _ = write!(out, " {op} ");
            to_sql(r, out);
            out.push(')');
        }
        // `column**2`, the usual weight: a product in double precision. It gives the same
        // bits as `power(column, 2.0)` (a float32 squared is exact in f64; an f64 product
        // is correctly rounded, as is pow for squares) for a tenth of the time.
        Node::Pow(b, e) if matches!(&**e, Node::Number(n) if n.parse::<f64>() == Ok(2.0)) && matches!(&**b, Node::Column(_)) => {
            let mut base = String::new();
            to_sql(b, &mut base);
            let _ = write!(out, "(CAST({base} AS DOUBLE) * CAST({base} AS DOUBLE))");
        }
        Node::Pow(b, e) => {
            out.push_str("power(");
            to_sql(b, out);
            out.push_str(", ");
            to_sql(e, out);
            out.push(')');
        }
        Node::Call(f, arg) => {
            let mut inner = String::new();
            to_sql(arg, &mut inner);
            out.push_str(&f.sql.replace("{0}", &inner));
        }
    }
}

/// The first column not inside a reduction, if any.
fn bare_column(node: &Node) -> Option<&str> {
    match node {
        Node::Number(_) => None,
        Node::Column(c) => Some(c),
        Node::Neg(inner) => bare_column(inner),
        Node::Binary(_, l, r) | Node::Pow(l, r) => bare_column(l).or_else(|| bare_column(r)),
        Node::Call(f, arg) => {
            if f.reduces {
                None
            } else {
                bare_column(arg)
            }
        }
    }
}

fn collect_columns(node: &Node, out: &mut BTreeSet<String>) {
    match node {
        Node::Number(_) => {}
        Node::Column(c) => {
            out.insert(c.clone());
        }
        Node::Neg(inner) | Node::Call(_, inner) => collect_columns(inner, out),
        Node::Binary(_, l, r) | Node::Pow(l, r) => {
            collect_columns(l, out);
            collect_columns(r, out);
        }
    }
}

/// A translated expression.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlExpr {
    /// The SQL text.
    pub sql: String,
    /// The columns it reads.
    pub columns: BTreeSet<String>,
}

/// Translate an element-wise expression (e.g. the `weights` of `average`): columns may
/// appear anywhere.
pub fn row_expression(text: &str, columns: &[String]) -> Result<SqlExpr, ExprError> {
    let node = parse(text, columns)?;
    let mut sql = String::new();
    to_sql(&node, &mut sql);
    let mut cols = BTreeSet::new();
    collect_columns(&node, &mut cols);
    Ok(SqlExpr { sql, columns: cols })
}

/// Translate an aggregate expression (an `expression:` variable): every column must sit
/// inside a reduction.
pub fn aggregate_expression(text: &str, columns: &[String]) -> Result<SqlExpr, ExprError> {
    let node = parse(text, columns)?;
    if let Some(column) = bare_column(&node) {
        return Err(ExprError::BareColumn {
            text: text.to_owned(),
            column: column.to_owned(),
        });
    }
    let mut sql = String::new();
    to_sql(&node, &mut sql);
    let mut cols = BTreeSet::new();
    collect_columns(&node, &mut cols);
    Ok(SqlExpr { sql, columns: cols })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<String> {
        vec!["h_li".into(), "s_li".into()]
    }

    #[test]
    fn reference_sigma_expression() {
        let e = aggregate_expression("1.0 / np.sqrt(np.sum(1.0 / s_li**2))", &cols()).unwrap();
        assert_eq!(e.sql, "(1.0 / sqrt(sum((1.0 / (CAST(\"s_li\" AS DOUBLE) * CAST(\"s_li\" AS DOUBLE))))))");
        assert_eq!(e.columns.into_iter().collect::<Vec<_>>(), vec!["s_li"]);
    }

    #[test]
    fn weights_are_row_wise() {
        let e = row_expression("1.0 / s_li**2", &cols()).unwrap();
        assert_eq!(e.sql, "(1.0 / (CAST(\"s_li\" AS DOUBLE) * CAST(\"s_li\" AS DOUBLE)))");
    }

    #[test]
    fn python_precedence() {
        // -x**2 is -(x**2); 2**-1 is 0.5; ** is right-associative.
        assert_eq!(row_expression("-h_li**2", &cols()).unwrap().sql, "(-(CAST(\"h_li\" AS DOUBLE) * CAST(\"h_li\" AS DOUBLE)))");
        assert_eq!(row_expression("h_li**3", &cols()).unwrap().sql, "power(\"h_li\", 3.0)");
        assert_eq!(row_expression("2**-1", &cols()).unwrap().sql, "power(2.0, (-1.0))");
        assert_eq!(
            row_expression("2**3**2", &cols()).unwrap().sql,
            "power(2.0, power(3.0, 2.0))"
        );
        assert_eq!(
            row_expression("h_li - s_li * 2 + 1", &cols()).unwrap().sql,
            "((\"h_li\" - (\"s_li\" * 2.0)) + 1.0)"
        );
    }

    #[test]
    fn len_and_mean() {
        let e = aggregate_expression("np.sum(h_li) / len(h_li)", &cols()).unwrap();
        assert_eq!(e.sql, "(sum(\"h_li\") / count(\"h_li\"))");
        let e = aggregate_expression("numpy.mean(abs(h_li - 3))", &cols()).unwrap();
        assert_eq!(e.sql, "avg(abs((\"h_li\" - 3.0)))");
    }

    #[test]
    fn bare_column_is_rejected() {
        let err = aggregate_expression("np.sqrt(h_li)", &cols()).unwrap_err();
        assert!(matches!(err, ExprError::BareColumn { ref column, .. } if column == "h_li"), "{err}");
    }

    #[test]
    fn unknown_names_list_what_exists() {
        let err = aggregate_expression("np.sum(h_lii)", &cols()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"h_lii\"") && msg.contains("h_li, s_li"), "{msg}");
        let err = aggregate_expression("np.frobnicate(h_li)", &cols()).unwrap_err();
        assert!(err.to_string().contains("np.frobnicate"), "{err}");
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        let err = row_expression("1.0 / (s_li", &cols()).unwrap_err();
        assert_eq!(
            err,
            ExprError::Syntax { text: "1.0 / (s_li".into(), pos: 11, detail: "')'".into() }
        );
        let err = row_expression("s_li $ 2", &cols()).unwrap_err();
        assert!(matches!(err, ExprError::Syntax { pos: 5, .. }), "{err:?}");
    }

    #[test]
    fn numbers_in_scientific_notation() {
        assert_eq!(row_expression("1e-3 * h_li", &cols()).unwrap().sql, "(1e-3 * \"h_li\")");
    }
}
