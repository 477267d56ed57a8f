//! What keeps other pages and hosts out: a per-process random token that every action (a POST)
//! must carry in `x-docflow-token` (the dashboard's own pages embed it; another local page
//! cannot read it), an `Origin` that, when sent, must be the dashboard's own, and on loopback a
//! `Host` that names loopback (so that a DNS name rebound to 127.0.0.1 cannot read the pages).
//! Refusals and bad input are JSON errors with a status saying what to do.

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

/// The header an action carries its token in.
pub const TOKEN_HEADER: &str = "x-docflow-token";

/// A JSON error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A machine-readable code.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    /// The reply: `{"error": {"code": …, "message": …}}`.
    pub fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        warp::reply::with_status(warp::reply::json(&body), self.status).into_response()
    }
}

use warp::Reply as _;

/// The checks of one dashboard.
#[derive(Debug, Clone)]
pub struct Guard {
    token: String,
    /// Whether actions (resubmit, discard) are served at all.
    actions: bool,
    /// `Host` values accepted; empty accepts any (a dashboard bound beyond loopback).
    hosts: Vec<String>,
}

impl Guard {
    /// A guard with a fresh random token for a dashboard on `port`; `loopback_only` restricts
    /// `Host` to loopback names.
    pub fn new(port: u16, loopback_only: bool) -> Self {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let hosts = if loopback_only {
            ["127.0.0.1", "localhost", "[::1]"]
                .iter()
                .map(|h| format!("{h}:{port}"))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            token,
            hosts,
            actions: true,
        }
    }

    /// The same guard refusing every action (a dashboard pointed at a deployed app without
    /// `--allow-actions`).
    pub fn read_only(mut self) -> Self {
        self.actions = false;
        self
    }

    /// The token pages embed: none when actions are refused anyway.
    pub fn page_token(&self) -> Option<&str> {
        self.actions.then_some(self.token.as_str())
    }

    /// Whether actions are served.
    pub fn actions_allowed(&self) -> bool {
        self.actions
    }

    /// The token the pages embed.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Any request: its `Host` must be one of ours.
    pub fn check_host(&self, host: Option<&str>) -> Result<(), ApiError> {
        if self.hosts.is_empty() {
            return Ok(());
        }
        match host {
            Some(h) if self.hosts.iter().any(|ok| ok.eq_ignore_ascii_case(h)) => Ok(()),
            _ => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ForeignHost",
                format!("the dashboard answers to {} only", self.hosts.join(", ")),
            )),
        }
    }

    /// An action: the token must match and the `Origin`, if sent, must be `http://{Host}`.
    pub fn check_action(
        &self,
        token: Option<&str>,
        origin: Option<&str>,
        host: Option<&str>,
    ) -> Result<(), ApiError> {
        if !self.actions {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ReadOnly",
                "this dashboard is read-only: start it with --allow-actions to resubmit or discard",
            ));
        }
        if let Some(origin) = origin {
            let ours = host.is_some_and(|h| origin.eq_ignore_ascii_case(&format!("http://{h}")));
            if !ours {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "ForeignOrigin",
                    format!(
                        "actions are accepted from the dashboard's own pages only, not from {origin}"
                    ),
                ));
            }
        }
        match token {
            Some(t) if constant_time_eq(t.as_bytes(), self.token.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "BadToken",
                format!(
                    "the {TOKEN_HEADER} header does not match this dashboard's token (reload the page)"
                ),
            )),
            None => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "MissingToken",
                format!("actions need the {TOKEN_HEADER} header the dashboard's pages send"),
            )),
        }
    }
}

/// Ingestion (`POST /v1/traces`, no token): from a loopback peer naming a loopback `Host`,
/// whatever address the dashboard listens on.
pub fn check_loopback(
    peer: Option<std::net::SocketAddr>,
    host: Option<&str>,
) -> Result<(), ApiError> {
    let refused = |what: String| Err(ApiError::new(StatusCode::FORBIDDEN, "NotLoopback", what));
    if !peer.is_some_and(|p| p.ip().is_loopback()) {
        return refused("traces are accepted from this machine only".into());
    }
    let name = host.map(|h| match h.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => h.rsplit_once(':').map_or(h, |(name, _)| name),
    });
    let loopback = name.is_some_and(|n| {
        n.eq_ignore_ascii_case("localhost")
            || n.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if !loopback {
        return refused(format!(
            "traces are accepted for a loopback Host only, not {host:?}"
        ));
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_need_the_token_and_their_own_origin() {
        let guard = Guard::new(7073, true);
        let token = guard.token().to_string();
        let host = Some("127.0.0.1:7073");
        assert!(guard.check_action(Some(&token), None, host).is_ok());
        assert!(
            guard
                .check_action(Some(&token), Some("http://127.0.0.1:7073"), host)
                .is_ok()
        );
        assert_eq!(
            guard.check_action(None, None, host).unwrap_err().code,
            "MissingToken"
        );
        assert_eq!(
            guard
                .check_action(Some("guess"), None, host)
                .unwrap_err()
                .code,
            "BadToken"
        );
        assert_eq!(
            guard
                .check_action(Some(&token), Some("http://evil.example"), host)
                .unwrap_err()
                .code,
            "ForeignOrigin"
        );
        assert_ne!(Guard::new(7073, true).token(), token, "a token per process");
        let read_only = Guard::new(7073, true).read_only();
        let token = read_only.token().to_string();
        let refused = read_only
            .check_action(Some(&token), None, host)
            .unwrap_err();
        assert_eq!(
            (refused.status, refused.code),
            (StatusCode::FORBIDDEN, "ReadOnly")
        );
    }

    #[test]
    fn ingestion_is_for_loopback_peers_and_hosts_only() {
        let local = Some("127.0.0.1:50000".parse().unwrap());
        assert!(check_loopback(local, Some("127.0.0.1:7073")).is_ok());
        assert!(check_loopback(local, Some("localhost:7073")).is_ok());
        assert!(check_loopback(local, Some("[::1]:7073")).is_ok());
        let far = Some("192.0.2.7:50000".parse().unwrap());
        assert_eq!(
            check_loopback(far, Some("127.0.0.1:7073"))
                .unwrap_err()
                .code,
            "NotLoopback"
        );
        assert!(check_loopback(local, Some("rebound.example:7073")).is_err());
        assert!(check_loopback(local, None).is_err());
        assert!(check_loopback(None, Some("127.0.0.1:7073")).is_err());
    }

    #[test]
    fn on_loopback_only_loopback_names_are_served() {
        let guard = Guard::new(7073, true);
        assert!(guard.check_host(Some("localhost:7073")).is_ok());
        assert!(guard.check_host(Some("127.0.0.1:7073")).is_ok());
        let refused = guard.check_host(Some("rebound.example:7073")).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(guard.check_host(None).is_err());
        assert!(Guard::new(7073, false).check_host(Some("anything")).is_ok());
    }
}
