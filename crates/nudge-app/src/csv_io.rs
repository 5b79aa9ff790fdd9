//! CSV import and export of contacts, shared by the API and the CLI.
//!
//! Import: a header row, then one contact per row. Columns `user_id` and `email` match
//! existing contacts (user id first); `subscription.<channel>` sets a subscription
//! state; `traits.<name>` or any other column sets a trait. Empty cells are skipped.
//! Cells that are exactly a JSON number or boolean (`42`, `true`) become one; anything
//! else (including `007`) stays a string. Columns an export writes but an import
//! cannot set (`id`, `created_at`, `updated_at`, `last_seen_at`, `anonymous_ids`) are
//! ignored, so an export can be imported back.

use crate::error::{AppError, Result};
use nudge_core::{Subscription, format_millis};
use nudge_store::{ContactImport, ContactQuery, Store};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

const IGNORED: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "last_seen_at",
    "anonymous_ids",
    "alias_user_ids",
];
pub const MAX_IMPORT_ROWS: usize = 1_000_000;

/// A row that cannot be imported: its row number in the file (the header is row 1,
/// as a spreadsheet numbers them), the column at fault when one is, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: usize,
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "line {}: column {c}: {}", self.row, self.message),
            None => write!(f, "line {}: {}", self.row, self.message),
        }
    }
}

/// A CSV file read row by row: the rows that can be imported (with their row
/// numbers) and those that cannot.
#[derive(Debug, Clone, Default)]
pub struct CsvRows {
    pub rows: Vec<(usize, ContactImport)>,
    pub errors: Vec<RowError>,
}

impl CsvRows {
    /// Data rows in the file.
    pub fn total(&self) -> usize {
        self.rows.len() + self.errors.len()
    }
}

fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(bytes)
}

fn headers_of(reader: &mut csv::Reader<&[u8]>) -> Result<csv::StringRecord> {
    let headers = reader
        .headers()
        .map_err(|e| AppError::invalid_request("csv", format!("cannot read the CSV header row: {e}")))?
        .clone();
    if !headers.iter().any(|h| h == "user_id" || h == "email") {
        return Err(AppError::invalid_request(
            "csv",
            "the header row needs a user_id or an email column",
        ));
    }
    Ok(headers)
}

/// Checks the header row only: what makes a whole file unusable is known at once.
pub fn check_contacts_csv_header(bytes: &[u8]) -> Result<()> {
    headers_of(&mut csv_reader(bytes)).map(|_| ())
}

/// Reads every row: a problem with the whole file (its header row, its size) is an
/// error; a problem with a row is that row's [`RowError`], and the other rows are
/// kept.
pub fn read_contacts_csv(bytes: &[u8]) -> Result<CsvRows> {
    let mut reader = csv_reader(bytes);
    let headers = headers_of(&mut reader)?;
    let mut out = CsvRows::default();
    for (i, record) in reader.records().enumerate() {
        if i >= MAX_IMPORT_ROWS {
            return Err(AppError::invalid_request(
                "csv",
                format!("more than {MAX_IMPORT_ROWS} rows; split the file"),
            ));
        }
        let row = i + 2;
        match record {
            Ok(record) => match contact_of(&headers, &record) {
                Ok(contact) => out.rows.push((row, contact)),
                Err((column, message)) => out.errors.push(RowError { row, column, message }),
            },
            Err(e) => out.errors.push(RowError {
                row,
                column: None,
                message: e.to_string(),
            }),
        }
    }
    Ok(out)
}

/// Every row of a CSV file, or the first row's problem: the all-or-nothing import
/// of the API and the CLI.
pub fn parse_contacts_csv(bytes: &[u8]) -> Result<Vec<ContactImport>> {
    let read = read_contacts_csv(bytes)?;
    if let Some(e) = read.errors.first() {
        return Err(AppError::invalid_request("csv", e.to_string()));
    }
    Ok(read.rows.into_iter().map(|(_, c)| c).collect())
}

/// One row as a contact; the error names the column at fault, when one is.
fn contact_of(
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
) -> std::result::Result<ContactImport, (Option<String>, String)> {
    let mut row = ContactImport::default();
    let mut traits = Map::new();
    for (h, cell) in headers.iter().zip(record.iter()) {
        if cell.is_empty() || IGNORED.contains(&h) {
            continue;
        }
        if h == "user_id" {
            row.user_id = Some(cell.to_string());
        } else if h == "email" {
            if nudge_core::contact::normalize_email(&Value::String(cell.into())).is_none() {
                return Err((Some(h.to_string()), format!("{cell:?} is not an email address")));
            }
            row.email = Some(cell.to_string());
        } else if let Some(ch) = h
            .strip_prefix("subscription.")
            .or_else(|| h.strip_prefix("subscriptions."))
        {
            let s = Subscription::parse(cell).ok_or_else(|| {
                (
                    Some(h.to_string()),
                    format!("{cell:?} is not subscribed, unsubscribed or pending"),
                )
            })?;
            row.subscriptions.insert(ch.to_string(), s);
        } else {
            let name = h.strip_prefix("traits.").unwrap_or(h);
            traits.insert(name.to_string(), cell_value(cell));
        }
    }
    if row.user_id.is_none() && row.email.is_none() {
        return Err((None, "a row needs a user_id or an email".into()));
    }
    row.traits = traits;
    Ok(row)
}

fn cell_value(cell: &str) -> Value {
    match serde_json::from_str::<Value>(cell) {
        // Only when writing the value back gives the same text: `007` stays a string.
        Ok(v @ (Value::Number(_) | Value::Bool(_))) if serde_json::to_string(&v).is_ok_and(|s| s == cell) => v,
        _ => Value::String(cell.to_string()),
    }
}

/// All contacts as CSV: fixed columns, one `subscription.<channel>` column per
/// channel in use, one `traits.<name>` column per trait in use.
pub async fn export_contacts_csv(store: &dyn Store) -> Result<String> {
    let mut contacts = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_contacts(&ContactQuery {
                after,
                limit: 1000,
                ..Default::default()
            })
            .await?;
        contacts.extend(page.items);
        match page.next.and_then(|n| n.parse().ok()) {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let trait_keys: BTreeSet<&str> = contacts
        .iter()
        .flat_map(|c| c.traits.keys().map(String::as_str))
        .collect();
    let channels: BTreeSet<&str> = contacts
        .iter()
        .flat_map(|c| c.subscriptions.keys().map(String::as_str))
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "id",
        "user_id",
        "email",
        "phone",
        "anonymous_ids",
        "created_at",
        "updated_at",
        "last_seen_at",
    ]
    .map(String::from)
    .to_vec();
    header.extend(channels.iter().map(|c| format!("subscription.{c}")));
    header.extend(trait_keys.iter().map(|k| format!("traits.{k}")));
    w.write_record(&header).map_err(AppError::internal)?;
    for c in &contacts {
        let mut rec = vec![
            c.id.to_string(),
            c.user_id.clone().unwrap_or_default(),
            c.email.clone().unwrap_or_default(),
            c.phone.clone().unwrap_or_default(),
            c.anonymous_ids.join(" "),
            format_millis(c.created_at),
            format_millis(c.updated_at),
            c.last_seen_at.map(format_millis).unwrap_or_default(),
        ];
        rec.extend(channels.iter().map(|ch| {
            c.subscriptions
                .get(*ch)
                .map(|s| s.as_str().to_string())
                .unwrap_or_default()
        }));
        rec.extend(trait_keys.iter().map(|k| match c.traits.get(*k) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        }));
        w.write_record(&rec).map_err(AppError::internal)?;
    }
    String::from_utf8(w.into_inner().map_err(AppError::internal)?).map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn import_reads_columns() {
        let csv = "user_id,email,plan,traits.age,zip,subscription.email,id\nu1,A@x.io,pro,42,007,unsubscribed,99\n,b@x.io,,true,,,\n";
        let rows = parse_contacts_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].user_id.as_deref(), Some("u1"));
        assert_eq!(
            Value::Object(rows[0].traits.clone()),
            json!({"plan": "pro", "age": 42, "zip": "007"})
        );
        assert_eq!(rows[0].subscriptions["email"], Subscription::Unsubscribed);
        assert_eq!(Value::Object(rows[1].traits.clone()), json!({"age": true}));
    }

    #[test]
    fn import_errors_name_the_line() {
        let err = |csv: &str| parse_contacts_csv(csv.as_bytes()).unwrap_err().to_string();
        assert!(err("name\nx\n").contains("user_id or an email column"));
        assert!(err("user_id,name\nu1,a\n,b\n").contains("line 3"));
        assert!(err("email\nnot-an-email\n").contains("line 2"));
        assert!(err("user_id,subscription.email\nu,maybe\n").contains("line 2: column subscription.email"));
        assert!(err("user_id,a\nu,1,2\n").contains("line 2"));
        assert!(err("email\nnot-an-email\n").contains("line 2: column email: \"not-an-email\""));
    }

    #[test]
    fn reading_keeps_good_rows_and_reports_each_bad_one() {
        let csv =
            "user_id,email,subscription.email\nu1,a@x.io,subscribed\nu2,nope,\n,,\nu4,d@x.io,maybe\nu5\nu6,f@x.io,\n";
        let read = read_contacts_csv(csv.as_bytes()).unwrap();
        assert_eq!(read.total(), 6);
        let good: Vec<usize> = read.rows.iter().map(|(row, _)| *row).collect();
        assert_eq!(good, vec![2, 7]);
        let bad: Vec<(usize, Option<&str>)> = read.errors.iter().map(|e| (e.row, e.column.as_deref())).collect();
        assert_eq!(
            bad,
            vec![
                (3, Some("email")),
                (4, None),
                (5, Some("subscription.email")),
                (6, None)
            ]
        );
        assert!(
            read.errors[3].message.contains("found record with 1 field"),
            "{:?}",
            read.errors[3]
        );
        assert!(check_contacts_csv_header(b"name\nx\n").is_err());
        assert!(check_contacts_csv_header(csv.as_bytes()).is_ok());
    }
}
