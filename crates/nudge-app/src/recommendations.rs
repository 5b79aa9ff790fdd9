//! Product recommendations' use cases (docs/recommendations.md): the catalogue (one
//! product set or deleted, a list, an import as JSON or CSV — every value checked,
//! each problem naming its field or its line and column), a contact's
//! recommendations, a product's similar products, and a refresh on request through
//! `nudge_engine::refresh_recommendations` (the same the engine's schedule runs).

use crate::{App, AppError, Result};
use nudge_core::ContactId;
use nudge_core::recommend::{self, MAX_PRODUCT_ID, Product, Recommendation};
use nudge_engine::{RecommendationEngineConfig, refresh_recommendations};
use nudge_store::{ProductPage, RecommendationModel};
use serde_json::{Map, Value};

/// Longest list asked for.
pub const MAX_LIST: usize = 50;
/// Products per import.
pub const MAX_IMPORT_PRODUCTS: usize = 100_000;
/// Longest text value of a product (name, category, links), in characters.
pub const MAX_TEXT: usize = 2_000;

const FIELDS: [&str; 8] = [
    "id",
    "name",
    "price",
    "category",
    "url",
    "image_url",
    "in_stock",
    "repeatable",
];

/// A product id as given (path or body): 1 to 200 characters, not only spaces.
pub fn check_product_id(field: &str, id: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(AppError::invalid_field(
            field,
            format!("{field}: a product id cannot be empty"),
        ));
    }
    if id.chars().count() > MAX_PRODUCT_ID {
        return Err(AppError::invalid_field(
            field,
            format!("{field}: a product id has at most {MAX_PRODUCT_ID} characters"),
        ));
    }
    Ok(())
}

/// A list length as asked (`limit`), 1 to 50, 10 when absent.
pub fn check_limit(limit: Option<i64>) -> Result<usize> {
    match limit {
        None => Ok(10),
        Some(n) if (1..=MAX_LIST as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(AppError::invalid_request(
            "limit",
            format!("limit: must be between 1 and {MAX_LIST}, got {n}"),
        )),
    }
}

fn text_field(field: &str, v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() > MAX_TEXT => Err(AppError::invalid_field(
            field,
            format!("{field}: at most {MAX_TEXT} characters"),
        )),
        Value::String(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        _ => Err(AppError::invalid_field(field, format!("{field}: must be a string"))),
    }
}

fn url_field(field: &str, v: &Value) -> Result<Option<String>> {
    let url = text_field(field, v)?;
    if let Some(u) = &url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(AppError::invalid_field(
            field,
            format!("{field}: must be an http:// or https:// address, got {u:?}"),
        ));
    }
    Ok(url)
}

/// A catalogue product from JSON (`{"id", "name", "price", "category", "url",
/// "image_url", "in_stock", "repeatable"}`), every problem naming `at.field`. `id`
/// given separately (a path) must match the body's when it has one.
pub fn product_from_json(at: &str, value: &Value, id: Option<&str>) -> Result<Product> {
    let name = |f: &str| {
        if at.is_empty() {
            f.to_string()
        } else {
            format!("{at}.{f}")
        }
    };
    let Value::Object(o) = value else {
        let field = if at.is_empty() { "body" } else { at };
        return Err(AppError::invalid_field(field, format!("{field}: must be an object")));
    };
    if let Some(unknown) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        let f = name(unknown);
        return Err(AppError::invalid_field(
            f.clone(),
            format!("{f}: unknown field (known: {})", FIELDS.join(", ")),
        ));
    }
    let get = |f: &str| o.get(f).unwrap_or(&Value::Null);
    let body_id = match get("id") {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        _ => {
            return Err(AppError::invalid_field(
                name("id"),
                format!("{}: must be a string", name("id")),
            ));
        }
    };
    let id = match (id, body_id) {
        (Some(path), Some(body)) if path != body => {
            return Err(AppError::invalid_field(
                name("id"),
                format!(
                    "{}: {body:?} differs from the product id in the path {path:?}",
                    name("id")
                ),
            ));
        }
        (Some(path), _) => path.to_string(),
        (None, Some(body)) => body,
        (None, None) => {
            return Err(AppError::MissingField {
                field: name("id"),
                message: format!("{}: a product needs an id", name("id")),
            });
        }
    };
    check_product_id(&name("id"), &id)?;
    let price = match get("price") {
        Value::Null => None,
        Value::Number(n) => match n.as_f64().filter(|p| p.is_finite() && *p >= 0.0) {
            Some(p) => Some(p),
            None => {
                return Err(AppError::invalid_field(
                    name("price"),
                    format!("{}: must be a number of 0 or more", name("price")),
                ));
            }
        },
        _ => {
            return Err(AppError::invalid_field(
                name("price"),
                format!("{}: must be a number of 0 or more", name("price")),
            ));
        }
    };
    let flag = |f: &str| match get(f) {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        _ => Err(AppError::invalid_field(
            name(f),
            format!("{}: must be true or false", name(f)),
        )),
    };
    Ok(Product {
        id,
        name: text_field(&name("name"), get("name"))?,
        price,
        category: text_field(&name("category"), get("category"))?,
        url: url_field(&name("url"), get("url"))?,
        image_url: url_field(&name("image_url"), get("image_url"))?,
        in_stock: flag("in_stock")?,
        repeatable: flag("repeatable")?.unwrap_or(false),
    })
}

/// Products from a JSON array (`products[i]...` in problems).
pub fn products_from_json(value: &Value) -> Result<Vec<Product>> {
    let Some(items) = value.as_array() else {
        return Err(AppError::invalid_field("products", "products: must be an array"));
    };
    if items.is_empty() || items.len() > MAX_IMPORT_PRODUCTS {
        return Err(AppError::invalid_field(
            "products",
            format!("products: between 1 and {MAX_IMPORT_PRODUCTS} products"),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| product_from_json(&format!("products[{i}]"), v, None))
        .collect()
}

/// Products from CSV: a header row naming columns among `id` (or `product_id`),
/// `name`, `price`, `category`, `url`, `image_url`, `in_stock`, `repeatable`, then
/// one product per row; empty cells are absent values. A problem names its line (the
/// header is line 1) and column.
pub fn products_from_csv(bytes: &[u8]) -> Result<Vec<Product>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| AppError::invalid_request("csv", format!("cannot read the CSV header row: {e}")))?
        .iter()
        .map(|h| {
            if h == "product_id" {
                "id".to_string()
            } else {
                h.to_string()
            }
        })
        .collect();
    if let Some(h) = headers.iter().find(|h| !FIELDS.contains(&h.as_str())) {
        return Err(AppError::invalid_request(
            "csv",
            format!(
                "line 1: unknown column {h:?} (known: product_id or {})",
                FIELDS.join(", ")
            ),
        ));
    }
    if !headers.iter().any(|h| h == "id") {
        return Err(AppError::invalid_request(
            "csv",
            "line 1: the header row needs an id (or product_id) column",
        ));
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| AppError::invalid_request("csv", format!("line {line}: {e}")))?;
        if out.len() >= MAX_IMPORT_PRODUCTS {
            return Err(AppError::invalid_request(
                "csv",
                format!("at most {MAX_IMPORT_PRODUCTS} products per import"),
            ));
        }
        let mut o = Map::new();
        for (h, cell) in headers.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            let v = match h.as_str() {
                "price" => match cell.parse::<f64>() {
                    Ok(p) => serde_json::Number::from_f64(p).map_or(Value::String(cell.into()), Value::Number),
                    Err(_) => Value::String(cell.into()),
                },
                "in_stock" | "repeatable" => match cell.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => Value::Bool(true),
                    "false" | "no" | "0" => Value::Bool(false),
                    _ => Value::String(cell.into()),
                },
                _ => Value::String(cell.into()),
            };
            o.insert(h.clone(), v);
        }
        let product = product_from_json("", &Value::Object(o), None).map_err(|e| {
            let (field, message) = match &e {
                AppError::InvalidField { field, message } | AppError::MissingField { field, message } => {
                    (field.clone(), message.clone())
                }
                other => ("".into(), other.to_string()),
            };
            let message = message
                .strip_prefix(&format!("{field}: "))
                .unwrap_or(&message)
                .to_string();
            AppError::invalid_request("csv", format!("line {line}: column {field}: {message}"))
        })?;
        out.push(product);
    }
    if out.is_empty() {
        return Err(AppError::invalid_request("csv", "the file has no product rows"));
    }
    Ok(out)
}

impl App {
    fn not_found_product(id: &str) -> AppError {
        AppError::not_found_field("id", format!("no product {id:?} in the catalogue"))
    }

    /// Creates or replaces one catalogue product.
    pub async fn put_product(&self, product: Product) -> Result<Product> {
        check_product_id("id", &product.id)?;
        self.store.put_products(vec![product.clone()], self.clock.now()).await?;
        Ok(product)
    }

    /// Creates or replaces catalogue products, in transactions of 1,000. How many.
    pub async fn import_products(&self, products: Vec<Product>) -> Result<usize> {
        let n = products.len();
        let now = self.clock.now();
        for chunk in products.chunks(1_000) {
            self.store.put_products(chunk.to_vec(), now).await?;
        }
        Ok(n)
    }

    pub async fn product(&self, id: &str) -> Result<Product> {
        check_product_id("id", id)?;
        self.store.product(id).await?.ok_or_else(|| Self::not_found_product(id))
    }

    pub async fn products(&self, after: Option<&str>, limit: Option<i64>) -> Result<ProductPage> {
        let limit = match limit {
            None => 100,
            Some(n) if (1..=1_000).contains(&n) => n as usize,
            Some(n) => {
                return Err(AppError::invalid_request(
                    "limit",
                    format!("limit: must be between 1 and 1000, got {n}"),
                ));
            }
        };
        Ok(self.store.products(after, limit).await?)
    }

    pub async fn delete_product(&self, id: &str) -> Result<()> {
        check_product_id("id", id)?;
        if self.store.delete_product(id).await? {
            Ok(())
        } else {
            Err(Self::not_found_product(id))
        }
    }

    /// A contact's recommendations (`NotFound` if there is no such contact).
    pub async fn contact_recommendations(&self, contact: ContactId, limit: Option<i64>) -> Result<Vec<Recommendation>> {
        let limit = check_limit(limit)?;
        let Some(c) = self.store.contact(contact).await? else {
            return Err(AppError::NotFound {
                field: Some("id".into()),
                message: format!("no contact {contact}"),
            });
        };
        let touches = self
            .store
            .contact_touches(c.id, nudge_messages::delivery::RECENT_TOUCHES)
            .await?;
        let seeds: Vec<String> = recommend::seeds(&touches).into_iter().map(|(p, _)| p).collect();
        let inputs = self.store.recommendation_inputs(&seeds).await?;
        Ok(recommend::for_contact(&touches, &inputs, limit))
    }

    /// Products similar to a catalogue product.
    pub async fn similar_products(&self, id: &str, limit: Option<i64>) -> Result<Vec<Recommendation>> {
        let limit = check_limit(limit)?;
        self.product(id).await?;
        let inputs = self.store.recommendation_inputs(&[id.to_string()]).await?;
        Ok(recommend::similar_to(id, &inputs, limit))
    }

    /// Refreshes the similarities and best sellers now. Takes as long as reading every
    /// product event.
    pub async fn refresh_recommendations(&self) -> Result<RecommendationModel> {
        let now = self.clock.now();
        Ok(refresh_recommendations(&*self.store, now, &RecommendationEngineConfig::default()).await?)
    }

    /// The current refresh.
    pub async fn recommendation_model(&self) -> Result<Option<RecommendationModel>> {
        Ok(self.store.recommendation_model().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(e: AppError) -> String {
        match e {
            AppError::InvalidField { field, .. } | AppError::MissingField { field, .. } => field,
            AppError::InvalidRequest { message, .. } => message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_product_is_read_from_json_and_each_problem_names_its_field() {
        let p = product_from_json(
            "",
            &json!({"id": "p1", "name": " Mug ", "price": 9.5, "category": "Kitchen",
                "url": "https://s.example/p1", "in_stock": false, "repeatable": true}),
            None,
        )
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("Mug"));
        assert_eq!((p.in_stock, p.repeatable, p.price), (Some(false), true, Some(9.5)));
        let bad = |v: Value| field_of(product_from_json("products[2]", &v, None).unwrap_err());
        assert_eq!(bad(json!({"name": "x"})), "products[2].id");
        assert_eq!(bad(json!({"id": 5})), "products[2].id");
        assert_eq!(bad(json!({"id": "a", "price": -1})), "products[2].price");
        assert_eq!(bad(json!({"id": "a", "price": "9"})), "products[2].price");
        assert_eq!(bad(json!({"id": "a", "url": "javascript:alert(1)"})), "products[2].url");
        assert_eq!(bad(json!({"id": "a", "in_stock": "yes"})), "products[2].in_stock");
        assert_eq!(bad(json!({"id": "a", "colour": "red"})), "products[2].colour");
        assert_eq!(bad(json!({"id": " "})), "products[2].id");
        assert_eq!(bad(json!([1])), "products[2]");
        // The path's id wins only when the body agrees.
        let e = product_from_json("", &json!({"id": "b"}), Some("a")).unwrap_err();
        assert_eq!(field_of(e), "id");
        assert_eq!(product_from_json("", &json!({}), Some("a")).unwrap().id, "a");
    }

    #[test]
    fn a_csv_catalogue_is_read_and_a_bad_row_names_its_line_and_column() {
        let csv = "product_id,name,price,category,in_stock,repeatable\n\
                   p1,Mug,9.5,Kitchen,no,\n\
                   p2,\"Tea, green\",,Food,,yes\n";
        let products = products_from_csv(csv.as_bytes()).unwrap();
        assert_eq!(products.len(), 2);
        assert_eq!(products[0].in_stock, Some(false));
        assert_eq!(products[1].name.as_deref(), Some("Tea, green"));
        assert!(products[1].repeatable && products[1].price.is_none());
        let bad = |csv: &str| field_of(products_from_csv(csv.as_bytes()).unwrap_err());
        assert_eq!(
            bad("id,price\np1,cheap\n"),
            "line 2: column price: must be a number of 0 or more"
        );
        assert_eq!(bad("id,name\np1,a\n,b\n"), "line 3: column id: a product needs an id");
        assert!(bad("name\nMug\n").contains("needs an id"));
        assert!(bad("id,colour\np1,red\n").contains("unknown column \"colour\""));
        assert_eq!(bad("id,name\n"), "the file has no product rows");
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(check_limit(None).unwrap(), 10);
        assert_eq!(check_limit(Some(50)).unwrap(), 50);
        assert!(check_limit(Some(0)).is_err() && check_limit(Some(51)).is_err());
    }
}
