//! The read-only SQL sandbox, checked on the parsed statement before
//! anything is planned: exactly one `SELECT`/`WITH` query whose every
//! relation is a registered table (or a CTE it defines, or
//! `information_schema`). Everything else — DDL, DML, `COPY`, `CREATE
//! EXTERNAL TABLE`, `SET`, `EXPLAIN`, table functions, a quoted path or
//! URL as a table — is refused with the reason, and so is an expression
//! nested deeper than [`MAX_EXPRESSION_DEPTH`] (planning and evaluating
//! recurse once per level: `1+1+…+1` with thousands of terms would run
//! the query thread out of stack). Planning then runs with DDL, DML and
//! statements disabled as a second fence.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, ObjectName, Query, Statement, TableFactor, Visit, Visitor};
use thiserror::Error;

/// Why a statement is refused; each maps to a 4xx with this message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("the SQL does not parse: {0}")]
    Syntax(String),
    #[error("send exactly one statement (got {0})")]
    StatementCount(usize),
    #[error("only SELECT or WITH queries are allowed; {0} is refused")]
    NotAQuery(String),
    #[error("table function {0}(...) is refused: only the registered tables can be read")]
    TableFunction(String),
    #[error("unknown table {0}: only the registered tables can be read (see GET /api/sql/tables)")]
    UnknownTable(String),
    #[error("SELECT ... INTO is refused: queries cannot create tables")]
    SelectInto,
    #[error(
        "the query nests expressions or subqueries more than {0} deep; simplify it (an IN list instead of a chain of ORs, say)"
    )]
    TooDeep(usize),
}

/// How deep expressions (and subqueries) may nest. Every phase of a query
/// recurses per level; the query threads' stack holds this with room to
/// spare (a test plans and runs a query at the limit).
pub const MAX_EXPRESSION_DEPTH: usize = 200;

impl Refusal {
    /// The error code of the JSON answer.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Syntax(_) => "sql_syntax",
            Refusal::StatementCount(_) => "one_statement",
            Refusal::NotAQuery(_) => "read_only",
            Refusal::TableFunction(_) => "table_function",
            Refusal::UnknownTable(_) => "unknown_table",
            Refusal::SelectInto => "read_only",
            Refusal::TooDeep(_) => "too_deep",
        }
    }
}

/// Checks `sql` against the registered `tables`; returns the parsed query.
pub fn check(sql: &str, tables: &BTreeSet<String>) -> Result<Box<Query>, Refusal> {
    let mut statements = DFParser::parse_sql(sql).map_err(|e| Refusal::Syntax(e.to_string()))?;
    if statements.len() != 1 {
        return Err(Refusal::StatementCount(statements.len()));
    }
    let statement = statements.pop_front().ok_or(Refusal::StatementCount(0))?;
    let query = match statement {
        DFStatement::Statement(boxed) => match *boxed {
            Statement::Query(query) => query,
            other => return Err(Refusal::NotAQuery(statement_kind(&other))),
        },
        DFStatement::CreateExternalTable(_) => return Err(Refusal::NotAQuery("CREATE EXTERNAL TABLE".into())),
        DFStatement::CopyTo(_) => return Err(Refusal::NotAQuery("COPY".into())),
        DFStatement::Explain(_) => return Err(Refusal::NotAQuery("EXPLAIN".into())),
        DFStatement::Reset(_) => return Err(Refusal::NotAQuery("RESET".into())),
    };
    let mut relations = Relations { tables, ctes: BTreeSet::new(), refusal: None, depth: 0 };
    let _ = query.visit(&mut relations);
    match relations.refusal {
        Some(refusal) => Err(refusal),
        None => Ok(query),
    }
}

/// The first keyword(s) of a statement, for the refusal message.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second] if matches!(first.to_ascii_uppercase().as_str(), "CREATE" | "DROP" | "ALTER") => {
            format!("{} {}", first.to_ascii_uppercase(), second.to_ascii_uppercase())
        }
        [first, ..] => first.to_ascii_uppercase(),
        [] => "an empty statement".into(),
    }
}

struct Relations<'a> {
    tables: &'a BTreeSet<String>,
    ctes: BTreeSet<String>,
    refusal: Option<Refusal>,
    /// Expressions and queries open around the node being visited.
    depth: usize,
}

impl Relations<'_> {
    fn refuse(&mut self, refusal: Refusal) -> ControlFlow<()> {
        self.refusal = Some(refusal);
        ControlFlow::Break(())
    }

    /// `name`, `public.name`, `datafusion.public.name`, or
    /// `information_schema.x`: names of this session, never a path.
    fn allowed(&self, name: &ObjectName) -> bool {
        let parts: Vec<String> =
            name.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase())).collect();
        if parts.len() != name.0.len() {
            return false;
        }
        match parts.as_slice() {
            [table] => self.tables.contains(table) || self.ctes.contains(table),
            [schema, _] if schema == "information_schema" => true,
            [schema, table] if schema == "public" => self.tables.contains(table),
            [catalog, schema, _] if catalog == "datafusion" && schema == "information_schema" => true,
            [catalog, schema, table] if catalog == "datafusion" && schema == "public" => self.tables.contains(table),
            _ => false,
        }
    }
}

impl Visitor for Relations<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > MAX_EXPRESSION_DEPTH {
            return self.refuse(Refusal::TooDeep(MAX_EXPRESSION_DEPTH));
        }
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_ascii_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > MAX_EXPRESSION_DEPTH {
            return self.refuse(Refusal::TooDeep(MAX_EXPRESSION_DEPTH));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &datafusion::sql::sqlparser::ast::Select) -> ControlFlow<()> {
        if select.into.is_some() {
            return self.refuse(Refusal::SelectInto);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table { name, args: Some(_), .. } => self.refuse(Refusal::TableFunction(name.to_string())),
            TableFactor::Table { name, .. } if !self.allowed(name) => {
                self.refuse(Refusal::UnknownTable(name.to_string()))
            }
            TableFactor::Function { name, .. } => self.refuse(Refusal::TableFunction(name.to_string())),
            TableFactor::TableFunction { expr, .. } => self.refuse(Refusal::TableFunction(expr.to_string())),
            _ => ControlFlow::Continue(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tables() -> BTreeSet<String> {
        ["orders", "order_items", "revenue_by_category_1m"].into_iter().map(String::from).collect()
    }

    fn refused(sql: &str) -> Refusal {
        check(sql, &tables()).unwrap_err()
    }

    #[test]
    fn reads_of_registered_tables_pass() {
        for sql in [
            "SELECT * FROM orders",
            "select count(*) from public.orders o join order_items i on o.order_id = i.order_id",
            "WITH t AS (SELECT order_id FROM orders) SELECT * FROM t",
            "SELECT * FROM (SELECT 1 AS x) s",
            "SELECT 1",
            "SELECT table_name FROM information_schema.tables",
            "SELECT * FROM orders WHERE order_id IN (SELECT order_id FROM order_items)",
            "SELECT * FROM datafusion.public.revenue_by_category_1m",
        ] {
            check(sql, &tables()).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn every_refused_class_says_why() {
        assert_eq!(refused("DROP TABLE orders"), Refusal::NotAQuery("DROP TABLE".into()));
        assert_eq!(refused("CREATE TABLE x AS SELECT 1"), Refusal::NotAQuery("CREATE TABLE".into()));
        assert_eq!(refused("INSERT INTO orders VALUES (1)"), Refusal::NotAQuery("INSERT".into()));
        assert_eq!(refused("DELETE FROM orders"), Refusal::NotAQuery("DELETE".into()));
        assert_eq!(refused("UPDATE orders SET total = 0"), Refusal::NotAQuery("UPDATE".into()));
        assert_eq!(refused("SET datafusion.execution.batch_size = 1"), Refusal::NotAQuery("SET".into()));
        assert_eq!(
            refused("CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'"),
            Refusal::NotAQuery("CREATE EXTERNAL TABLE".into())
        );
        assert_eq!(refused("COPY orders TO '/tmp/x.parquet'"), Refusal::NotAQuery("COPY".into()));
        assert_eq!(refused("EXPLAIN SELECT * FROM orders"), Refusal::NotAQuery("EXPLAIN".into()));
        assert_eq!(refused("SELECT 1; SELECT 2"), Refusal::StatementCount(2));
        assert_eq!(refused(""), Refusal::StatementCount(0));
        assert!(matches!(refused("SELEC 1"), Refusal::Syntax(_)));
        assert!(matches!(refused("SELECT * FROM 'file:///etc/passwd'"), Refusal::UnknownTable(_)));
        assert!(matches!(refused("SELECT * FROM \"/tmp/lake/orders\""), Refusal::UnknownTable(_)));
        assert!(matches!(refused("SELECT * FROM secrets"), Refusal::UnknownTable(_)));
        assert!(matches!(refused("SELECT * FROM other.public.orders"), Refusal::UnknownTable(_)));
        assert!(matches!(refused("SELECT * FROM read_parquet('/etc/x.parquet')"), Refusal::TableFunction(_)));
        assert!(matches!(refused("SELECT * FROM generate_series(1, 100000000000)"), Refusal::TableFunction(_)));
        assert!(matches!(
            refused("SELECT * FROM orders WHERE order_id IN (SELECT x FROM hidden)"),
            Refusal::UnknownTable(_)
        ));
        assert_eq!(refused("SELECT * INTO copy FROM orders"), Refusal::SelectInto);
    }

    #[test]
    fn expressions_nested_past_the_limit_are_refused_before_planning() {
        let chain = |terms: usize| format!("SELECT {}", vec!["1"; terms].join("+"));
        check(&chain(MAX_EXPRESSION_DEPTH - 5), &tables()).unwrap();
        assert_eq!(refused(&chain(MAX_EXPRESSION_DEPTH + 5)), Refusal::TooDeep(MAX_EXPRESSION_DEPTH));
        let ors = format!("SELECT * FROM orders WHERE {}", vec!["total = 1"; 2_000].join(" OR "));
        assert_eq!(refused(&ors), Refusal::TooDeep(MAX_EXPRESSION_DEPTH));
        let mut nested = "SELECT 1".to_string();
        for _ in 0..MAX_EXPRESSION_DEPTH {
            nested = format!("SELECT * FROM ({nested}) t");
        }
        assert!(matches!(refused(&nested), Refusal::TooDeep(_) | Refusal::Syntax(_)));
    }
}
