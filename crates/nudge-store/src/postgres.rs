pub struct PgStore; impl PgStore { pub async fn connect(_url: &str) -> crate::Result<Self> { Err(crate::StoreError::Pool("todo".into())) } }
