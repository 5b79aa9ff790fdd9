//! Compiles segment conditions to SQL, for full computation and preview counts.
//!
//! The SQL must give exactly the members `Condition::matches` gives; the rules of
//! `nudge_core::segment` apply (missing values compare false, numbers never equal
//! strings, half-open windows). Every compiled predicate is wrapped so it is never
//! NULL, so `NOT` is plain negation. Dates are read with the `nudge_ts` function
//! (a Rust function registered on SQLite connections; a PL/pgSQL function on
//! PostgreSQL, migration 0002) and anniversaries with `nudge_md`.

use nudge_core::Millis;
use nudge_core::segment::{
    AggregateFn, Condition, CountOp, DAY_MS, FirstLast, LEAD_SCORE_TRAIT, PropertyFilter, SEGMENT_ZONE_TRAIT, SubState,
    Test, TimeTest, Window, month_day_in, salt_number, zone_names,
};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Real(f64),
    Int(i64),
}

/// A boolean SQL expression over `contacts c`, and its parameters in order.
#[derive(Debug)]
pub struct Compiled {
    pub sql: String,
    pub params: Vec<Param>,
}

pub fn compile(condition: &Condition, dialect: Dialect, now: Millis) -> Compiled {
    let mut b = Builder {
        dialect,
        params: Vec::new(),
        now,
    };
    let sql = b.condition(condition);
    Compiled { sql, params: b.params }
}

struct Builder {
    dialect: Dialect,
    params: Vec<Param>,
    now: Millis,
}

/// A JSON value inside a document column: `traits.<name>` or `properties.<name>`.
struct Field<'a> {
    doc: &'a str,
    key: &'a str,
}

impl Builder {
    fn pg(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    fn bind(&mut self, p: Param) -> String {
        let cast = match (&p, self.dialect) {
            (_, Dialect::Sqlite) => "",
            (Param::Text(_), _) => "::text",
            (Param::Real(_), _) => "::float8",
            (Param::Int(_), _) => "::int8",
        };
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}{cast}", self.params.len()),
        }
    }

    fn text(&mut self, s: &str) -> String {
        self.bind(Param::Text(s.to_string()))
    }

    /// On SQLite, a JSON path or event name written into the SQL as a literal rather
    /// than bound: only then can the planner match the partial expression indexes of
    /// [`event_indexes`] (a bound parameter matches no indexed expression).
    fn sqlite_literal_or_bind(&mut self, s: &str) -> String {
        if self.pg() { self.text(s) } else { literal(s) }
    }
    fn real(&mut self, f: f64) -> String {
        self.bind(Param::Real(f))
    }
    fn int(&mut self, i: i64) -> String {
        self.bind(Param::Int(i))
    }

    fn truth(&self, b: bool) -> &'static str {
        match (self.pg(), b) {
            (true, true) => "true",
            (true, false) => "false",
            (false, true) => "1",
            (false, false) => "0",
        }
    }

    /// `COALESCE(expr, false)`: a predicate that is never NULL.
    fn never_null(&self, expr: String) -> String {
        format!("COALESCE(({expr}), {})", self.truth(false))
    }

    fn condition(&mut self, c: &Condition) -> String {
        match c {
            Condition::And { conditions } => self.join(conditions, "AND", true),
            Condition::Or { conditions } => self.join(conditions, "OR", false),
            Condition::Not { condition } => format!("(NOT {})", self.condition(condition)),
            Condition::Trait { name, test } => self.test(
                &Field {
                    doc: "c.traits",
                    key: name,
                },
                test,
            ),
            Condition::Event {
                event,
                filters,
                count,
                window,
            } => {
                let from = self.events_from(event, filters, Some(window));
                // Count no further than the answer needs: "at least 2" stops at the
                // second event, "exactly 1" at the second.
                let (op, limit) = match count.op {
                    CountOp::AtLeast => (">=", count.value as i64),
                    CountOp::AtMost => ("<=", count.value as i64 + 1),
                    CountOp::Exactly => ("=", count.value as i64 + 1),
                };
                let limit = self.int(limit);
                let n = self.int(count.value as i64);
                let sub = if self.pg() { " AS limited" } else { "" };
                format!("((SELECT count(*) FROM (SELECT 1 {from} LIMIT {limit}){sub}) {op} {n})")
            }
            Condition::EventTime {
                event,
                filters,
                which,
                test,
            } => {
                let from = self.events_from(event, filters, None);
                let f = match which {
                    FirstLast::First => "min",
                    FirstLast::Last => "max",
                };
                let t = format!("(SELECT {f}(e.timestamp) {from})");
                let cmp = match test {
                    TimeTest::Before { value } => format!("{t} < {}", self.int(instant(value))),
                    TimeTest::After { value } => format!("{t} > {}", self.int(instant(value))),
                    _ => match test.relative() {
                        Some((true, span)) => {
                            let (lo, hi) = (self.int(self.now - span), self.int(self.now));
                            format!("{t} BETWEEN {lo} AND {hi}")
                        }
                        Some((false, span)) => format!("{t} < {}", self.int(self.now - span)),
                        None => self.truth(false).to_string(),
                    },
                };
                self.never_null(cmp)
            }
            Condition::Aggregate {
                event,
                filters,
                function,
                property,
                window,
                op,
                value,
            } => {
                let from = self.events_from(event, filters, Some(window));
                let agg = match function {
                    AggregateFn::Count => "count(*)".to_string(),
                    f => {
                        let num = self.number(&Field {
                            doc: "e.properties",
                            key: property.as_deref().unwrap_or_default(),
                        });
                        match f {
                            AggregateFn::Sum => format!("COALESCE(sum({num}), 0)"),
                            AggregateFn::Avg => format!("avg({num})"),
                            AggregateFn::Min => format!("min({num})"),
                            AggregateFn::Max => format!("max({num})"),
                            AggregateFn::Count => unreachable!("handled above"),
                        }
                    }
                };
                let v = self.real(*value);
                self.never_null(format!("(SELECT {agg} {from}) {} {v}", op.sql()))
            }
            Condition::Subscription { channel, state } => {
                let actual = if self.pg() {
                    format!("(c.subscriptions ->> {})", self.text(channel))
                } else {
                    format!("json_extract(c.subscriptions, {})", self.text(&json_path(channel)))
                };
                match state {
                    SubState::Unknown => format!("({actual} IS NULL)"),
                    s => {
                        let want = self.text(match s {
                            SubState::Subscribed => "subscribed",
                            SubState::Unsubscribed => "unsubscribed",
                            _ => "pending",
                        });
                        self.never_null(format!("{actual} = {want}"))
                    }
                }
            }
            Condition::Segment { segment } => {
                let id = self.int(*segment);
                format!("(EXISTS (SELECT 1 FROM segment_members m WHERE m.segment_id = {id} AND m.contact_id = c.id))")
            }
            Condition::Message { .. } => match c.as_event() {
                Some(event) => self.condition(&event),
                None => self.truth(false).to_string(),
            },
            Condition::LeadScore { score, op, value } => {
                let key = score
                    .as_deref()
                    .map_or_else(|| LEAD_SCORE_TRAIT.to_string(), nudge_core::scoring::score_trait);
                let n = self.number(&Field {
                    doc: "c.traits",
                    key: &key,
                });
                let v = self.real(*value);
                format!("(COALESCE({n}, 0) {} {v})", op.sql())
            }
            Condition::RandomBucket { percent, salt } => {
                let salt = self.int(salt_number(salt));
                let p = self.int(*percent as i64);
                format!("((((c.id % 2147483648) * 40503 + {salt}) % 2147483648) % 100 < {p})")
            }
        }
    }

    fn join(&mut self, conditions: &[Condition], op: &str, empty: bool) -> String {
        if conditions.is_empty() {
            return self.truth(empty).to_string();
        }
        // Cheapest first: `AND` stops at the first false, `OR` at the first true, so
        // conditions that read event rows run only for contacts the others let through.
        let mut ordered: Vec<&Condition> = conditions.iter().collect();
        ordered.sort_by_key(|c| cost(c));
        let parts: Vec<String> = ordered.into_iter().map(|c| self.condition(c)).collect();
        format!("({})", parts.join(&format!(" {op} ")))
    }

    /// `FROM events e WHERE ...` for the contact's `track` events named `event`.
    fn events_from(&mut self, event: &str, filters: &[PropertyFilter], window: Option<&Window>) -> String {
        let name = self.sqlite_literal_or_bind(event);
        let mut sql = format!("FROM events e WHERE e.contact_id = c.id AND e.type = 'track' AND e.name = {name}");
        match window {
            None | Some(Window::Ever) => {}
            Some(w @ (Window::LastDays(_) | Window::LastHours(_))) => {
                let span = w.span().unwrap_or_default();
                let (lo, hi) = (self.int(self.now - span), self.int(self.now));
                sql += &format!(" AND e.timestamp BETWEEN {lo} AND {hi}");
            }
            Some(Window::Between { from, to }) => {
                let (lo, hi) = (self.int(instant(from)), self.int(instant(to)));
                sql += &format!(" AND e.timestamp >= {lo} AND e.timestamp < {hi}");
            }
        }
        for f in filters {
            let cond = self.test(
                &Field {
                    doc: "e.properties",
                    key: &f.property,
                },
                &f.test,
            );
            sql += &format!(" AND {cond}");
        }
        sql
    }

    /// The JSON type of a field: SQLite's names (`text`, `integer`, `real`, `true`...)
    /// or PostgreSQL's (`string`, `number`, `boolean`...).
    fn json_type(&mut self, f: &Field) -> String {
        if self.pg() {
            format!("jsonb_typeof({} -> {})", f.doc, self.text(f.key))
        } else {
            format!(
                "json_type({}, {})",
                f.doc,
                self.sqlite_literal_or_bind(&json_path(f.key))
            )
        }
    }

    /// The field as a number, NULL unless it is a JSON number.
    fn number(&mut self, f: &Field) -> String {
        if self.pg() {
            let k1 = self.text(f.key);
            let k2 = self.text(f.key);
            format!(
                "(CASE WHEN jsonb_typeof({d} -> {k1}) = 'number' THEN ({d} ->> {k2})::float8 END)",
                d = f.doc
            )
        } else {
            let p1 = self.sqlite_literal_or_bind(&json_path(f.key));
            let p2 = self.sqlite_literal_or_bind(&json_path(f.key));
            format!(
                "(CASE WHEN json_type({d}, {p1}) IN ('integer', 'real') THEN json_extract({d}, {p2}) END)",
                d = f.doc
            )
        }
    }

    /// The field as a string, NULL unless it is a JSON string.
    fn string(&mut self, f: &Field) -> String {
        if self.pg() {
            let k1 = self.text(f.key);
            let k2 = self.text(f.key);
            format!(
                "(CASE WHEN jsonb_typeof({d} -> {k1}) = 'string' THEN {d} ->> {k2} END)",
                d = f.doc
            )
        } else {
            let p1 = self.sqlite_literal_or_bind(&json_path(f.key));
            let p2 = self.sqlite_literal_or_bind(&json_path(f.key));
            format!(
                "(CASE WHEN json_type({d}, {p1}) = 'text' THEN json_extract({d}, {p2}) END)",
                d = f.doc
            )
        }
    }

    /// The field as an instant (ms), NULL unless it is an ISO 8601 date string.
    fn date(&mut self, f: &Field) -> String {
        if self.pg() {
            format!("nudge_ts({} -> {})", f.doc, self.text(f.key))
        } else {
            let s = self.string(f);
            format!("nudge_ts({s})")
        }
    }

    fn equals(&mut self, f: &Field, v: &Value) -> String {
        match v {
            Value::String(s) => {
                let field = self.string(f);
                let s = self.text(s);
                self.never_null(format!("{field} = {s}"))
            }
            Value::Number(n) => {
                let field = self.number(f);
                let n = self.real(n.as_f64().unwrap_or(f64::NAN));
                self.never_null(format!("{field} = {n}"))
            }
            Value::Bool(b) => {
                let t = self.json_type(f);
                let want = match (self.pg(), b) {
                    (false, true) => "'true'",
                    (false, false) => "'false'",
                    (true, _) => "'boolean'",
                };
                if self.pg() {
                    let k = self.text(f.key);
                    let lit = if *b { "'true'::jsonb" } else { "'false'::jsonb" };
                    self.never_null(format!("{t} = {want} AND {} -> {k} = {lit}", f.doc))
                } else {
                    self.never_null(format!("{t} = {want}"))
                }
            }
            _ => self.truth(false).to_string(),
        }
    }

    fn test(&mut self, f: &Field, test: &Test) -> String {
        let now = self.now;
        match test {
            Test::Equals { value } => self.equals(f, value),
            Test::NotEquals { value } => format!("(NOT {})", self.equals(f, value)),
            Test::In { values } => {
                let parts: Vec<String> = values.iter().map(|v| self.equals(f, v)).collect();
                if parts.is_empty() {
                    self.truth(false).to_string()
                } else {
                    format!("({})", parts.join(" OR "))
                }
            }
            Test::NotIn { values } => {
                let parts: Vec<String> = values.iter().map(|v| self.equals(f, v)).collect();
                if parts.is_empty() {
                    self.truth(true).to_string()
                } else {
                    format!("(NOT ({}))", parts.join(" OR "))
                }
            }
            Test::GreaterThan { value } => self.compare(f, ">", *value),
            Test::GreaterOrEqual { value } => self.compare(f, ">=", *value),
            Test::LessThan { value } => self.compare(f, "<", *value),
            Test::LessOrEqual { value } => self.compare(f, "<=", *value),
            Test::Contains { value } => {
                let s = self.string(f);
                let v = self.text(value);
                let e = if self.pg() {
                    format!("strpos({s}, {v}) > 0")
                } else {
                    format!("instr({s}, {v}) > 0")
                };
                self.never_null(e)
            }
            Test::StartsWith { value } => {
                let s = self.string(f);
                let v = self.text(value);
                let e = if self.pg() {
                    format!("starts_with({s}, {v})")
                } else {
                    let v2 = self.text(value);
                    format!("substr({s}, 1, length({v})) = {v2}")
                };
                self.never_null(e)
            }
            Test::Exists => {
                let t = self.json_type(f);
                self.never_null(format!("{t} <> 'null'"))
            }
            Test::NotExists => {
                let t = self.json_type(f);
                format!("(NOT {})", self.never_null(format!("{t} <> 'null'")))
            }
            Test::Before { value } => {
                let d = self.date(f);
                let v = self.int(instant(value));
                self.never_null(format!("{d} < {v}"))
            }
            Test::After { value } => {
                let d = self.date(f);
                let v = self.int(instant(value));
                self.never_null(format!("{d} > {v}"))
            }
            Test::WithinLastDays { days } => {
                let d = self.date(f);
                let (lo, hi) = (self.int(now - *days as Millis * DAY_MS), self.int(now));
                self.never_null(format!("{d} BETWEEN {lo} AND {hi}"))
            }
            Test::WithinNextDays { days } => {
                let d = self.date(f);
                let (lo, hi) = (self.int(now), self.int(now + *days as Millis * DAY_MS));
                self.never_null(format!("{d} BETWEEN {lo} AND {hi}"))
            }
            Test::AnniversaryWithinDays { days } => {
                let d = self.date(f);
                if *days >= 365 {
                    return self.never_null(format!("{d} IS NOT NULL"));
                }
                let md = format!("nudge_md({d})");
                let end = now + *days as Millis * DAY_MS;
                let by_zone = self.per_zone(|zone| {
                    (
                        month_day_in(now, zone).unwrap_or_default(),
                        month_day_in(end, zone).unwrap_or_default(),
                    )
                });
                let e = self.by_zone(by_zone, |b, (start, end)| {
                    let (s, e) = (b.text(&start), b.text(&end));
                    if start > end {
                        format!("{md} >= {s} OR {md} <= {e}")
                    } else {
                        format!("{md} BETWEEN {s} AND {e}")
                    }
                });
                self.never_null(e)
            }
            Test::AnniversaryThisMonth => {
                let d = self.date(f);
                let by_zone = self.per_zone(|zone| month_day_in(now, zone).unwrap_or_default()[..2].to_string());
                let e = self.by_zone(by_zone, |b, month| {
                    let m = b.text(&month);
                    format!("substr(nudge_md({d}), 1, 2) = {m}")
                });
                self.never_null(e)
            }
        }
    }

    /// What "today" makes of a test in each time zone: the value for UTC (and contacts
    /// with no recognised zone), and the zones where it differs, grouped by value.
    fn per_zone<K: Ord + Clone>(&self, key: impl Fn(Option<&str>) -> K) -> (K, Vec<(K, Vec<&'static str>)>) {
        let utc = key(None);
        let mut groups: std::collections::BTreeMap<K, Vec<&'static str>> = Default::default();
        for zone in zone_names() {
            let k = key(Some(zone));
            if k != utc {
                groups.entry(k).or_default().push(zone);
            }
        }
        (utc, groups.into_iter().collect())
    }

    /// `CASE` over the contact's time zone (the `timezone` trait, see
    /// `nudge_core::segment::segment_zone`): the test for each group of zones, else UTC's.
    fn by_zone<K>(
        &mut self,
        (utc, groups): (K, Vec<(K, Vec<&str>)>),
        mut test: impl FnMut(&mut Self, K) -> String,
    ) -> String {
        if groups.is_empty() {
            return test(self, utc);
        }
        let tz = self.string(&Field {
            doc: "c.traits",
            key: SEGMENT_ZONE_TRAIT,
        });
        let mut sql = "CASE".to_string();
        for (k, zones) in groups {
            // Zone names are plain (`zone_names` keeps `A-Za-z0-9/_+-` only): inlined.
            let list: Vec<String> = zones.iter().map(|z| format!("'{z}'")).collect();
            let t = test(self, k);
            sql += &format!(" WHEN {tz} IN ({}) THEN ({t})", list.join(", "));
        }
        let t = test(self, utc);
        sql += &format!(" ELSE ({t}) END");
        sql
    }

    fn compare(&mut self, f: &Field, op: &str, value: f64) -> String {
        let n = self.number(f);
        let v = self.real(value);
        self.never_null(format!("{n} {op} {v}"))
    }
}

/// A rough cost of evaluating a condition for one contact: a column or trait read, an
/// index lookup, or a read of event rows (property filters and aggregates).
fn cost(c: &Condition) -> u32 {
    match c {
        Condition::And { conditions } | Condition::Or { conditions } => conditions.iter().map(cost).sum(),
        Condition::Not { condition } => cost(condition),
        Condition::Trait { .. }
        | Condition::Subscription { .. }
        | Condition::RandomBucket { .. }
        | Condition::LeadScore { .. } => 1,
        Condition::Segment { .. } => 2,
        Condition::Event { filters, .. } | Condition::EventTime { filters, .. } if filters.is_empty() => 10,
        Condition::Message { channel, template, .. } if channel.is_none() && template.is_none() => 10,
        Condition::Aggregate {
            function: AggregateFn::Count,
            filters,
            ..
        } if filters.is_empty() => 10,
        Condition::Event { .. }
        | Condition::EventTime { .. }
        | Condition::Message { .. }
        | Condition::Aggregate { .. } => 100,
    }
}

fn instant(s: &str) -> Millis {
    // Definitions are validated before they are compiled.
    nudge_core::parse_instant(s).unwrap_or(0)
}

/// `$."name"` for SQLite's JSON functions (names are validated: no quotes).
/// A SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The partial indexes on `events` that let SQLite answer a definition's event
/// conditions with property filters (or aggregated properties) from an index alone:
/// one per (event name, properties read), on `(contact_id, type, name, timestamp,
/// json_type(p), json_extract(p), ...) WHERE type = 'track' AND name = <event>`, covering what the
/// compiled SQL reads (see `sqlite_literal_or_bind`). `(index name, CREATE INDEX
/// statement)`, names derived from their content.
pub fn event_indexes(condition: &Condition) -> Vec<(String, String)> {
    fn walk(c: &Condition, out: &mut std::collections::BTreeMap<String, std::collections::BTreeSet<String>>) {
        match c {
            Condition::And { conditions } | Condition::Or { conditions } => {
                conditions.iter().for_each(|c| walk(c, out))
            }
            Condition::Not { condition } => walk(condition, out),
            Condition::Event { event, filters, .. } | Condition::EventTime { event, filters, .. }
                if !filters.is_empty() =>
            {
                out.entry(event.clone())
                    .or_default()
                    .extend(filters.iter().map(|f| f.property.clone()));
            }
            Condition::Aggregate {
                event,
                filters,
                property,
                ..
            } => {
                let mut keys: Vec<String> = filters.iter().map(|f| f.property.clone()).collect();
                keys.extend(property.clone());
                if !keys.is_empty() {
                    out.entry(event.clone()).or_default().extend(keys);
                }
            }
            Condition::Message { .. } => {
                if let Some(e) = c.as_event() {
                    walk(&e, out);
                }
            }
            _ => {}
        }
    }
    let mut reads = std::collections::BTreeMap::new();
    walk(condition, &mut reads);
    reads
        .into_iter()
        .map(|(event, keys)| {
            // The leading columns of the general events index, so the planner sees it
            // as at least as selective, then what the filters read: covering.
            let mut exprs: Vec<String> = ["contact_id", "type", "name", "timestamp"].map(String::from).into();
            for k in &keys {
                let p = literal(&json_path(k));
                exprs.push(format!("json_type(properties, {p})"));
                exprs.push(format!("json_extract(properties, {p})"));
            }
            let body = format!(
                "ON events ({}) WHERE type = 'track' AND name = {}",
                exprs.join(", "),
                literal(&event)
            );
            // FNV-1a: a stable name for the same content.
            let mut h: u64 = 0xcbf29ce484222325;
            for b in body.bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
            let name = format!("events_read_{h:016x}");
            (name.clone(), format!("CREATE INDEX IF NOT EXISTS {name} {body}"))
        })
        .collect()
}

fn json_path(name: &str) -> String {
    format!("$.\"{name}\"")
}
