//! Product recommendations through the admin API (SQLite, and PostgreSQL when
//! `NUDGE_TEST_DATABASE_URL` is set): bad input is a 400 naming its field (or line and
//! column); the catalogue is set, imported, listed and deleted; purchases tracked
//! through `/v1/batch` are learned by a refresh and come back as a contact's
//! recommendations and a product's similar products, with their reasons.

use serde_json::json;

mod common;
use common::*;

#[tokio::test]
async fn catalogue_and_recommendations_through_the_api() {
    for app in spawn_apps().await {
        let (s, v) = app
            .call(reqwest::Method::GET, "/api/v1/recommendations/model", None)
            .await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")), "{v}");

        // Bad products name their field.
        for (body, code, field) in [
            (json!({"price": -1}), "invalid_field", "price"),
            (json!({"price": "9"}), "invalid_field", "price"),
            (json!({"url": "javascript:alert(1)"}), "invalid_field", "url"),
            (json!({"in_stock": "yes"}), "invalid_field", "in_stock"),
            (json!({"colour": "red"}), "invalid_field", "colour"),
            (json!({"id": "other"}), "invalid_field", "id"),
            (json!([1]), "invalid_field", "body"),
        ] {
            let (s, v) = app.put("/api/v1/products/sku-1", body.clone()).await;
            assert_eq!(s, 400, "{body}: {v}");
            assert_eq!(
                (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
                (Some(code), Some(field)),
                "{v}"
            );
        }
        let (s, v) = app.put("/api/v1/products/%20", json!({})).await;
        assert_eq!((s, v["error"]["field"].as_str()), (400, Some("id")), "{v}");
        let (s, v) = app
            .post(
                "/api/v1/products/import",
                json!({"products": [{"id": "a"}, {"id": "b", "price": -2}]}),
            )
            .await;
        assert_eq!(
            (s, v["error"]["field"].as_str()),
            (400, Some("products[1].price")),
            "{v}"
        );
        let (s, v) = app.post("/api/v1/products/import", json!({"items": []})).await;
        assert_eq!((s, v["error"]["field"].as_str()), (400, Some("items")), "{v}");
        let csv = |body: &str| {
            app.http
                .post(format!("{}/api/v1/products/import", app.url))
                .bearer_auth(ADMIN)
                .header("Content-Type", "text/csv")
                .body(body.to_string())
                .send()
        };
        let r = csv("id,price\nsku-9,cheap\n").await.unwrap();
        assert_eq!(r.status(), 400);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            v["error"]["message"], "line 2: column price: must be a number of 0 or more",
            "{v}"
        );
        assert_eq!(v["error"]["field"], "csv");
        // Nothing of a refused import was stored.
        assert_eq!(app.get("/api/v1/products").await["data"], json!([]));
        for path in [
            "/api/v1/products?limit=0",
            "/api/v1/products/x/similar?limit=51",
            "/api/v1/contacts/1/recommendations?limit=abc",
            "/api/v1/contacts/abc/recommendations",
        ] {
            let (s, v) = app.call(reqwest::Method::GET, path, None).await;
            assert_eq!(s, 400, "{path}: {v}");
        }
        let (s, _) = app.call(reqwest::Method::GET, "/api/v1/products/nope", None).await;
        assert_eq!(s, 404);
        let (s, _) = app
            .call(reqwest::Method::GET, "/api/v1/products/nope/similar", None)
            .await;
        assert_eq!(s, 404);
        let (s, _) = app
            .call(reqwest::Method::GET, "/api/v1/contacts/999/recommendations", None)
            .await;
        assert_eq!(s, 404);

        // The catalogue: a CSV import, one product set, a deletion.
        let r = csv("product_id,name,price,category,url,in_stock\n\
             shirt,Linen Shirt,49,Shirts,https://shop.example/p/shirt,true\n\
             tie,Silk Tie,25,Shirts,https://shop.example/p/tie,\n\
             gone,Old Tie,5,Shirts,,false\n")
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["imported"], 3);
        let (s, v) = app
            .put("/api/v1/products/belt", json!({"name": "Leather Belt", "price": 30, "category": "Shirts", "url": "https://shop.example/p/belt"}))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["repeatable"], false);
        let (s, _) = app
            .post("/api/v1/products/import", json!({"products": [{"id": "temp"}]}))
            .await;
        assert_eq!(s, 200);
        let (s, _) = app.delete("/api/v1/products/temp").await;
        assert_eq!(s, 204);
        let (s, _) = app.delete("/api/v1/products/temp").await;
        assert_eq!(s, 404);
        let page = app.get("/api/v1/products?limit=2").await;
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        assert_eq!(page["next"], "gone");
        assert_eq!(app.get("/api/v1/products/shirt").await["in_stock"], true);

        // Three customers bought the shirt with the tie, two with the out-of-stock tie.
        let item = |id: &str| json!({"product_id": id, "name": "from an event"});
        let mut batch = Vec::new();
        for i in 0..3 {
            batch.push(
                json!({"type": "track", "userId": format!("c{i}"), "event": "Order Completed",
                "messageId": format!("o{i}"), "properties": {"products": [item("shirt"), item("tie"), item("gone")]}}),
            );
        }
        batch.push(
            json!({"type": "track", "userId": "ada", "event": "Product Viewed", "messageId": "v1",
            "properties": item("shirt")}),
        );
        app.track(json!({ "batch": batch })).await;
        let (s, model) = app
            .call(reqwest::Method::POST, "/api/v1/recommendations/refresh", None)
            .await;
        assert_eq!(s, 200, "{model}");
        assert_eq!(
            (model["contacts"].as_i64(), model["products"].as_i64()),
            (Some(4), Some(3)),
            "{model}"
        );
        assert_eq!(app.get("/api/v1/recommendations/model").await, model);
        // The imported names stay (the catalogue's, not the events').
        assert_eq!(app.get("/api/v1/products/tie").await["name"], "Silk Tie");

        let similar = app.get("/api/v1/products/shirt/similar?limit=2").await;
        assert_eq!(similar["data"][0]["product"]["id"], "tie", "{similar}");
        assert_eq!(
            similar["data"][0]["reason"],
            json!({"type": "similar", "to": ["shirt"]})
        );
        assert!(
            similar["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["product"]["id"] != "gone")
        );
        let ada = app
            .store
            .find_contact(&nudge_store::Lookup::UserId("ada".into()))
            .await
            .unwrap()
            .unwrap();
        let recs = app.get(&format!("/api/v1/contacts/{}/recommendations", ada.id)).await;
        assert_eq!(recs["contact_id"], ada.id);
        let ids: Vec<&str> = recs["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["product"]["id"].as_str().unwrap())
            .collect();
        // The tie by similarity to the shirt she viewed; the shirt itself as a best
        // seller (viewed, not bought); never the out-of-stock tie.
        assert_eq!(ids, ["tie", "shirt"], "{recs}");
        assert_eq!(recs["data"][0]["product"]["url"], "https://shop.example/p/tie");
        app.finish().await;
    }
}
