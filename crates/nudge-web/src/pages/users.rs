//! Settings › Users: the owner manages who may sign in and with which role.

use crate::WebState;
use crate::auth::{FieldErrors, Viewer};
use crate::render::{self, Chrome};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use nudge_app::accounts;
use nudge_core::access::{Permission, Role};
use serde::Deserialize;

pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub created_at: String,
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    c: Chrome,
    users: Vec<UserRow>,
    roles: [Role; 3],
    email: String,
    role: Role,
    errors: FieldErrors,
}

async fn render_page(state: &WebState, viewer: &Viewer, email: String, role: Role, errors: FieldErrors) -> Response {
    let t = &viewer.t;
    let users = match state.api.store.users().await {
        Ok(u) => u,
        Err(e) => return render::app_error(t, e.into()),
    };
    let failed = !errors.0.is_empty();
    let mut resp = render::page(&UsersPage {
        c: viewer.chrome("settings", "/settings/users"),
        users: users
            .into_iter()
            .map(|u| UserRow {
                is_me: u.id == viewer.session.user.id,
                id: u.id,
                email: u.email,
                role: u.role,
                created_at: t.date(u.created_at),
            })
            .collect(),
        roles: Role::ALL,
        email,
        role,
        errors,
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

/// `GET /settings/users`
pub async fn page(State(state): State<WebState>, viewer: Viewer) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    render_page(&state, &viewer, String::new(), Role::Marketer, FieldErrors::default()).await
}

#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// `POST /settings/users`
pub async fn create(State(state): State<WebState>, viewer: Viewer, Form(form): Form<NewUserForm>) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    let Some(role) = Role::parse(&form.role) else {
        let errors = FieldErrors(vec![("role".into(), viewer.t.get("users-bad-role"))]);
        return render_page(&state, &viewer, form.email, Role::Marketer, errors).await;
    };
    match accounts::create_user(&*state.api.store, &form.email, role, &form.password, state.now()).await {
        Ok(_) => Redirect::to("/settings/users").into_response(),
        Err(e) => render_page(&state, &viewer, form.email, role, FieldErrors::from_app(&e)).await,
    }
}

/// `POST /settings/users/{id}/delete`
pub async fn delete(State(state): State<WebState>, viewer: Viewer, Path(id): Path<i64>) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    match accounts::delete_user(&*state.api.store, id).await {
        Ok(()) => Redirect::to("/settings/users").into_response(),
        Err(e) => {
            render_page(
                &state,
                &viewer,
                String::new(),
                Role::Marketer,
                FieldErrors::from_app(&e),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

/// `POST /settings/users/{id}/role`
pub async fn set_role(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<RoleForm>,
) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    let Some(role) = Role::parse(&form.role) else {
        let errors = FieldErrors(vec![(String::new(), viewer.t.get("users-bad-role"))]);
        return render_page(&state, &viewer, String::new(), Role::Marketer, errors).await;
    };
    match accounts::set_role(&*state.api.store, id, role).await {
        Ok(()) => Redirect::to("/settings/users").into_response(),
        Err(e) => {
            render_page(
                &state,
                &viewer,
                String::new(),
                Role::Marketer,
                FieldErrors::from_app(&e),
            )
            .await
        }
    }
}
